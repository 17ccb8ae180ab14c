"""Liveness and readiness probes (open, no authentication)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.deps import RedisDep, SessionsDep

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


async def _probe_database(sessions: SessionsDep) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


async def _probe_redis(redis: RedisDep) -> None:
    await redis.ping()


@router.get("/readyz", response_model=None)
async def readyz(sessions: SessionsDep, redis: RedisDep) -> dict[str, Any] | JSONResponse:
    """PostgreSQL and Redis both answer; 503 naming the one that does not."""
    checks: dict[str, str] = {}
    for name, probe in (
        ("database", _probe_database(sessions)),
        ("redis", _probe_redis(redis)),
    ):
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await probe
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", reported by name
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return body if ready else JSONResponse(body, status_code=503)

"""Liveness and readiness probes (open, no authentication)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.deps import RedisDep, SessionsDep
from service.api.error_schema import ErrorOut
from service.api.errors import error_body

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


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {
            "description": "Both answer",
            "content": {
                "application/json": {
                    "example": {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
                }
            },
        },
        503: {
            "model": ErrorOut,
            "description": "PostgreSQL or Redis does not answer; `details.checks` names it",
        },
    },
)
async def readyz(sessions: SessionsDep, redis: RedisDep) -> dict[str, Any] | JSONResponse:
    """PostgreSQL and Redis both answer; 503 in the error shape naming the one that does
    not (``details.checks``)."""
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
    down = [name for name, value in checks.items() if value != "ok"]
    if not down:
        return {"status": "ok", "checks": checks}
    return JSONResponse(
        error_body(
            "service_unavailable",
            f"not ready: {', '.join(down)} unavailable",
            {"status": "unavailable", "checks": checks},
        ),
        status_code=503,
    )

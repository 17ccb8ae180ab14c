"""Reachability checks of PostgreSQL and Redis with messages an operator can act on."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import text

from service.db.engine import create_engine, redacted_url
from service.errors import ServiceUnavailable
from service.settings import Settings

CHECK_TIMEOUT_S = 5.0


async def check_database(settings: Settings) -> None:
    engine = create_engine(settings.database)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(
            f"cannot reach PostgreSQL at {redacted_url(settings.database.url)} "
            f"({type(exc).__name__}: {exc}); set [database] url in settings.toml "
            "or OPSJOBS_DATABASE__URL"
        ) from None
    finally:
        await engine.dispose()


async def check_redis(settings: Settings) -> None:
    client = Redis.from_url(settings.redis.url, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await client.ping()
    except Exception as exc:
        raise ServiceUnavailable(
            f"cannot reach Redis at {settings.redis.url} ({type(exc).__name__}: {exc}); "
            "set [redis] url in settings.toml or OPSJOBS_REDIS__URL"
        ) from None
    finally:
        await client.aclose()

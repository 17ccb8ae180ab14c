"""Shared pieces of ``make bench``: isolated database and Redis, child workers, reporting."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from service.db.engine import SessionFactory, create_engine, create_session_factory
from service.db.migrate import ensure_database, migrate
from service.keyspace import KeyedRedis, open_redis, refuse_foreign_keys
from service.secrets import KeyRing
from service.settings import (
    DatabaseSettings,
    QueueSettings,
    SecretsSettings,
    Settings,
    WorkerSettings,
)
from service.settings import (
    RedisSettings as OpsRedisSettings,
)

BENCH_DATABASE_URL = os.environ.get(
    "OPSJOBS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/opsjobs_bench"
)
BENCH_REDIS_URL = os.environ.get("OPSJOBS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
BENCH_QUEUE = "bench"


# The bench's own secrets key file, made on first use (workers load one at startup).
BENCH_KEY_FILE = Path(tempfile.gettempdir()) / "opsjobs-bench" / "keys.json"


def bench_settings() -> Settings:
    return Settings(
        secrets=SecretsSettings(key_file=BENCH_KEY_FILE),
        database=DatabaseSettings(url=BENCH_DATABASE_URL, pool_size=20, max_overflow=10),
        redis=OpsRedisSettings(url=BENCH_REDIS_URL),
        queues=QueueSettings(default=BENCH_QUEUE, devices="bench-devices", scheduler="bench-sched"),
        worker=WorkerSettings(),
    )


def child_env(settings: Settings) -> dict[str, str]:
    """Environment that points an ``opsjobs`` child process at the bench stores."""
    return {
        **os.environ,
        "OPSJOBS_DATABASE__URL": settings.database.url,
        "OPSJOBS_REDIS__URL": settings.redis.url,
        "OPSJOBS_REDIS__PREFIX": settings.redis.prefix,
        "OPSJOBS_QUEUES__DEFAULT": settings.queues.default,
        "OPSJOBS_QUEUES__DEVICES": settings.queues.devices,
        "OPSJOBS_QUEUES__SCHEDULER": settings.queues.scheduler,
        "OPSJOBS_SECRETS__KEY_FILE": str(settings.secrets.key_file),
    }


@dataclass
class BenchStores:
    settings: Settings
    sessions: SessionFactory
    redis: KeyedRedis


@asynccontextmanager
async def bench_stores() -> AsyncIterator[BenchStores]:
    """A freshly migrated bench database and an empty bench Redis database."""
    settings = bench_settings()
    await asyncio.to_thread(KeyRing.load, settings.secrets.key_file, create=True)
    redis = await open_redis(settings.redis.url, settings.redis.prefix)
    try:
        # The bench empties its database: only if nothing else keeps keys there.
        await refuse_foreign_keys(redis, redis.keyspace, settings.redis.url)
        await redis.flushdb()
        await ensure_database(settings.database.url)
        engine = create_engine(settings.database)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await migrate(engine)
            yield BenchStores(settings, create_session_factory(engine), redis)
        finally:
            await engine.dispose()
        await redis.flushdb()
    finally:
        await redis.aclose()


async def run_child(args: list[str], env: dict[str, str]) -> float:
    """Run ``python -m <args>`` to completion; returns its wall time in seconds."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", *args, env=env)
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {code}")
    return time.perf_counter() - started


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"\n== {title}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")

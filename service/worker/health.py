"""Worker health: every worker process keeps a heartbeat key in Redis that expires with it.

Each worker writes ``<prefix>worker:<worker_id>`` (host, pid, queue, the runs it is
running, version, when it started, when it last beat) every ``worker_health.interval``
seconds with a TTL of ``worker_health.ttl``; a worker that dies simply stops being listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from arq.connections import ArqRedis
from sqlalchemy import select

from executors.services import Services
from service import service_version
from service.db.models import JobRun, RunStatus
from service.keyspace import keyspace_of
from service.queue.outage import REDIS_UNAVAILABLE, RedisOutage
from service.worker.outages import Outage, database_outage

logger = logging.getLogger(__name__)

# Keys fetched per MGET while listing workers.
LIST_CHUNK = 200


@dataclass(frozen=True)
class WorkerBeat:
    """One worker as its last heartbeat described it."""

    worker_id: str
    host: str
    pid: int
    queue: str
    running_runs: list[int]
    version: str
    started_at: datetime
    beat_at: datetime


async def running_runs(services: Services) -> list[int]:
    """Ids of the runs this worker is running, as PostgreSQL records them."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(JobRun.id)
            .where(
                JobRun.status == RunStatus.RUNNING.value,
                JobRun.worker_id == services.worker_id,
            )
            .order_by(JobRun.id)
        )
        return list(rows)


async def beat(
    services: Services, queue: str, started_at: datetime, running: list[int] | None = None
) -> WorkerBeat:
    """Write this worker's heartbeat key once; returns what was written. ``running``: the
    runs it runs, when known without asking PostgreSQL (none, at start-up)."""
    record = WorkerBeat(
        worker_id=services.worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        queue=queue,
        running_runs=await running_runs(services) if running is None else running,
        version=service_version(),
        started_at=started_at,
        beat_at=datetime.now(UTC),
    )
    payload = json.dumps(asdict(record), default=datetime.isoformat)
    ttl_ms = int(services.settings.worker_health.ttl * 1000)
    await cast(
        Awaitable[Any],
        services.redis.set(
            keyspace_of(services.redis).worker(services.worker_id), payload, px=ttl_ms
        ),
    )
    return record


async def keep_beating(
    services: Services,
    queue: str,
    outage: RedisOutage | None = None,
    db_outage: Outage | None = None,
) -> None:
    """Beat until cancelled; a failed beat is retried at the next interval.

    Redis being away is the worker's outage (logged once by ``outage``), a lost database
    connection is reported to ``db_outage`` (logged once too); anything else is logged as
    a failed beat.
    """
    started_at = datetime.now(UTC)
    interval = services.settings.worker_health.interval
    db_outage = db_outage or database_outage()
    while True:
        try:
            await db_outage.guard(lambda: beat(services, queue, started_at), None)
        except REDIS_UNAVAILABLE as exc:
            if outage is not None:
                outage.failed(exc)
            else:
                logger.warning("worker heartbeat failed: Redis unreachable (%s)", exc)
        except Exception:  # a heartbeat must never kill the worker
            logger.warning(
                "worker heartbeat failed", exc_info=True, extra={"worker_id": services.worker_id}
            )
        await asyncio.sleep(interval)


def start_heartbeat(
    services: Services,
    queue: str,
    outage: RedisOutage | None = None,
    db_outage: Outage | None = None,
) -> asyncio.Task[None]:
    """Start the heartbeat task of a worker (called from ``on_startup``)."""
    return asyncio.create_task(
        keep_beating(services, queue, outage, db_outage), name="worker-heartbeat"
    )


async def stop_heartbeat(services: Services, task: asyncio.Task[None]) -> None:
    """Stop beating and remove the key, so a stopped worker disappears at once."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Without Redis the key expires by itself.
    with contextlib.suppress(*REDIS_UNAVAILABLE):
        await services.redis.delete(keyspace_of(services.redis).worker(services.worker_id))


async def live_workers(redis: ArqRedis) -> list[WorkerBeat]:
    """Every worker whose heartbeat has not expired, by queue then id."""
    keys = [
        key async for key in redis.scan_iter(match=keyspace_of(redis).workers_pattern(), count=500)
    ]
    workers: list[WorkerBeat] = []
    for start in range(0, len(keys), LIST_CHUNK):
        values = await redis.mget(keys[start : start + LIST_CHUNK])
        for value in values:
            if value is None:  # expired between SCAN and MGET
                continue
            data = json.loads(value)
            data["started_at"] = datetime.fromisoformat(data["started_at"])
            data["beat_at"] = datetime.fromisoformat(data["beat_at"])
            workers.append(WorkerBeat(**data))
    return sorted(workers, key=lambda worker: (worker.queue, worker.worker_id))

"""``/api/workers``: the worker processes whose heartbeat is alive."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.auth import QueuesReader
from service.api.deps import RedisDep
from service.worker.health import live_workers

router = APIRouter(prefix="/api/workers", tags=["workers"])


class WorkerOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    queue: str
    running_runs: list[int]
    version: str
    started_at: datetime
    beat_at: datetime
    beat_age_seconds: float


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    total: int
    by_queue: dict[str, int]


@router.get("", response_model=WorkersOut)
async def list_workers(caller: QueuesReader, redis: RedisDep) -> WorkersOut:
    """Live workers (heartbeat not expired), by queue, with the runs each is running."""
    workers = await live_workers(redis)
    # Read after the beats, so no beat is younger than "now".
    now = datetime.now(UTC)
    by_queue: dict[str, int] = {}
    for worker in workers:
        by_queue[worker.queue] = by_queue.get(worker.queue, 0) + 1
    return WorkersOut(
        workers=[
            WorkerOut(
                worker_id=worker.worker_id,
                host=worker.host,
                pid=worker.pid,
                queue=worker.queue,
                running_runs=worker.running_runs,
                version=worker.version,
                started_at=worker.started_at,
                beat_at=worker.beat_at,
                beat_age_seconds=max(0.0, round((now - worker.beat_at).total_seconds(), 3)),
            )
            for worker in workers
        ],
        total=len(workers),
        by_queue=by_queue,
    )

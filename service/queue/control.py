"""What waits in each queue, and purging a queue (cancelling its pending runs).

The run rows are the record: depth and age come from PostgreSQL; the arq queue size
(jobs waiting or being run, per Redis) is shown beside them, so a gap between the two
(a lost job the reconciler will queue again) is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis
from sqlalchemy import ColumnElement, func, select, text, true, update

from service.db.engine import SessionFactory
from service.db.models import JobRun, RunStatus
from service.keyspace import keyspace_of
from service.queue import transport

logger = logging.getLogger(__name__)

# Literal statuses so the planner can use the partial indexes on pending and running runs.
_ACTIVE = text("job_runs.status IN ('pending', 'running')")
# Jobs removed from Redis per round trip when a queue is purged.
DISCARD_BATCH = 500


@dataclass(frozen=True)
class QueueStats:
    name: str
    configured: bool
    pending: int
    running: int
    arq_jobs: int
    oldest_queued_at: datetime | None
    oldest_queued_age_seconds: float | None


async def queue_stats(
    sessions: SessionFactory,
    redis: ArqRedis,
    configured: Sequence[str],
    reader: ColumnElement[bool] | None = None,
) -> list[QueueStats]:
    """Every configured queue, then any other queue that has pending or running runs.

    A queue that is not configured is named only when ``reader`` (a condition on runs,
    ``runs_visible_to``) sees one of its runs: a private template's queue name is the
    owner's to see. Counts include every run.
    """
    named = func.bool_or(true() if reader is None else reader)
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    JobRun.queue,
                    JobRun.status,
                    func.count(),
                    func.min(JobRun.queued_at),
                    func.extract("epoch", func.now() - func.min(JobRun.queued_at)),
                    named,
                )
                .where(_ACTIVE)
                .group_by(JobRun.queue, JobRun.status)
            )
        ).all()
    pending: dict[str, tuple[int, datetime | None, float | None]] = {}
    running: dict[str, int] = {}
    seen: set[str] = set()
    for queue, status, count, oldest, age, visible in rows:
        if status == RunStatus.PENDING.value:
            pending[queue] = (count, oldest, float(age))
        else:
            running[queue] = count
        if visible:
            seen.add(queue)
    names = list(dict.fromkeys([*configured, *sorted(seen)]))
    space = keyspace_of(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(space.queue(name))
        sizes: list[int] = await pipe.execute()
    stats = []
    for name, size in zip(names, sizes, strict=True):
        waiting, oldest_at, age_s = pending.get(name) or (0, None, None)
        stats.append(
            QueueStats(
                name=name,
                configured=name in configured,
                pending=waiting,
                running=running.get(name, 0),
                arq_jobs=size,
                oldest_queued_at=oldest_at,
                oldest_queued_age_seconds=None if age_s is None else round(max(age_s, 0.0), 3),
            )
        )
    return stats


async def purge_queue(
    sessions: SessionFactory, redis: ArqRedis, queue: str, cancelled_by: str | None
) -> list[int]:
    """Cancel every pending run of ``queue`` and remove its job; returns the run ids.

    One guarded UPDATE (``WHERE status = 'pending'``): a run a worker took a moment ago is
    left running, and the worker of a cancelled run that was already delivered finds it not
    pending and ignores it.
    """
    async with sessions.begin() as session:
        result = await session.execute(
            update(JobRun)
            .where(JobRun.queue == queue, JobRun.status == RunStatus.PENDING.value)
            .values(
                status=RunStatus.CANCELLED.value,
                cancel_requested_at=func.now(),
                cancelled_by=cancelled_by,
                finished_at=func.now(),
                reason=f"queue {queue} purged",
            )
            .returning(JobRun.id)
        )
        run_ids = sorted(row.id for row in result)
    for start in range(0, len(run_ids), DISCARD_BATCH):
        chunk = run_ids[start : start + DISCARD_BATCH]
        await transport.discard_jobs(redis, [(run_id, queue) for run_id in chunk])
    logger.info(
        "queue purged: %s pending runs cancelled",
        len(run_ids),
        extra={"queue": queue, "by": cancelled_by},
    )
    return run_ids

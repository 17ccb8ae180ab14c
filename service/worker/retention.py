"""Retention: finished runs older than ``retention.days`` are deleted, with their targets,
and so are notification facts and settled events older than that; answers kept for
``Idempotency-Key`` replays go once their 24 h window is over.

Only runs in a terminal status (completed, failed, cancelled, skipped) whose ``finished_at``
is older than the cut-off go; pending and running runs are never touched, whatever their
age. Deletes run in batches of ``retention.batch`` rows, each its own short transaction,
and rows locked by someone else are skipped until the next pass.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from executors.services import Services
from service.db.models import TERMINAL_STATUSES, JobRun
from service.db.security_models import IDEMPOTENCY_WINDOW, IdempotencyKey
from service.notify.retention import purge_notifications
from service.queue import transport
from service.worker.context import WorkerContext

logger = logging.getLogger(__name__)


async def purge_finished_runs(services: Services, now: datetime | None = None) -> int:
    """Delete finished runs older than the retention period; returns how many went."""
    settings = services.settings.retention
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.days)
    terminal = sorted(status.value for status in TERMINAL_STATUSES)
    deleted = 0
    while True:
        batch = (
            select(JobRun.id)
            .where(JobRun.status.in_(terminal), JobRun.finished_at < cutoff)
            .order_by(JobRun.id)
            .limit(settings.batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with services.sessions.begin() as session:
            result = await session.execute(
                delete(JobRun).where(JobRun.id.in_(batch)).returning(JobRun.id, JobRun.queue)
            )
            gone = [(row.id, row.queue) for row in result]
        # Anything Redis still holds for them goes too (one round trip per batch).
        await transport.discard_jobs(services.redis, gone)
        count = len(gone)
        deleted += count
        if count < settings.batch:
            break
    if deleted:
        logger.info("deleted %s finished runs older than %s", deleted, cutoff.isoformat())
    notifications = await purge_notifications(services.sessions, cutoff, settings.batch)
    if notifications:
        logger.info("deleted %s notification facts and events", notifications)
    await purge_idempotency_keys(services, now)
    return deleted


async def purge_idempotency_keys(services: Services, now: datetime | None = None) -> int:
    """Delete the answers kept for ``Idempotency-Key`` replays once their window is over."""
    cutoff = (now or datetime.now(UTC)) - IDEMPOTENCY_WINDOW
    async with services.sessions.begin() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
        )
    count: int = getattr(result, "rowcount", 0) or 0
    if count:
        logger.info("deleted %s idempotency keys older than %s", count, cutoff.isoformat())
    return count


async def retention_cron(ctx: WorkerContext) -> int:
    return await purge_finished_runs(ctx["services"])


def retention_minutes(interval: float) -> set[int]:
    """Minutes of the hour at which retention runs: the period in whole minutes, shortened
    to a divisor of 60 (so at most hourly)."""
    step = max(1, min(60, round(interval / 60)))
    while 60 % step:
        step -= 1
    return set(range(0, 60, step))

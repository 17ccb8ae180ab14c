"""Periodic upkeep run by arq cron in the scheduler-queue workers.

- ``reap_lost_runs``: a running run whose heartbeat expired lost its worker; it is retried
  (attempt + 1) while the run's retry policy allows, else failed with ``worker lost``.
- ``reconcile_pending_runs``: a pending run whose arq job is missing from Redis (a crash
  between commit and enqueue, Redis data loss) is queued again — a run waiting for its
  next attempt only once its ``retry_at`` has passed.

Both are safe to run concurrently from several workers: rows are claimed with
``FOR UPDATE SKIP LOCKED`` and every change goes through the guarded transitions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from executors.services import Services
from service.db.models import JobRun, Outcome, RunStatus
from service.notify import outbox
from service.notify.outbox import FactKind
from service.queue import transport
from service.runs.lifecycle import close_open_targets
from service.runs.retries import AttemptEnd, RetryOn, RetryPolicy, RetryScheduled, retry_locked
from service.worker.context import WorkerContext

logger = logging.getLogger(__name__)

REAP_BATCH = 500
RECONCILE_BATCH = 1000
# A pending run younger than this may still be between its commit and its enqueue.
RECONCILE_MIN_AGE_S = 30
WORKER_LOST = "worker lost"
_LOST = AttemptEnd(failure=RetryOn.LOST, error=WORKER_LOST, summary=WORKER_LOST)


def retries_lost(attempt: int, policy: RetryPolicy) -> bool:
    """Whether a run lost during ``attempt`` gets another one."""
    return attempt < policy.max_attempts and policy.covers(RetryOn.LOST)


@dataclass(frozen=True)
class ReapReport:
    retried: list[int]
    failed: list[int]
    cancelled: list[int]


async def reap_lost_runs(services: Services) -> ReapReport:
    """Retry or fail every running run whose heartbeat is older than ``reaper.lost_after``."""
    lost_after = services.settings.reaper.lost_after
    retried: list[RetryScheduled] = []
    failed: list[int] = []
    cancelled: list[int] = []
    async with services.sessions.begin() as session:
        rows = (
            await session.execute(
                select(
                    JobRun.id,
                    JobRun.attempt,
                    JobRun.max_attempts,
                    JobRun.retry_policy,
                    JobRun.queue,
                    JobRun.cancel_requested_at,
                )
                .where(
                    JobRun.status == RunStatus.RUNNING.value,
                    JobRun.heartbeat_at < func.now() - timedelta(seconds=lost_after),
                )
                .order_by(JobRun.heartbeat_at)
                .limit(REAP_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            guard = (JobRun.id == row.id, JobRun.attempt == row.attempt)
            values: dict[str, Any]
            policy = RetryPolicy.of(row.max_attempts, row.retry_policy)
            if row.cancel_requested_at is not None:
                values = {
                    "status": RunStatus.CANCELLED.value,
                    "outcome": Outcome.UNKNOWN.value,
                    "reason": f"{WORKER_LOST} while cancelling",
                }
                cancelled.append(row.id)
            elif retries_lost(row.attempt, policy):
                retried.append(
                    await retry_locked(session, row.id, row.attempt, row.queue, policy, _LOST)
                )
                continue
            else:
                values = {
                    "status": RunStatus.FAILED.value,
                    "outcome": Outcome.UNKNOWN.value,
                    "error": WORKER_LOST,
                    "summary": WORKER_LOST,
                }
                failed.append(row.id)
            values["finished_at"] = func.now()
            await session.execute(update(JobRun).where(*guard).values(**values))
            await close_open_targets(session, row.id)
        await outbox.record_facts(session, failed, FactKind.LOST)
    for retry in retried:
        # The dead worker's job still sits in Redis under its in-progress key; clear it so
        # the run can be queued afresh under the same job id, due at its retry_at.
        await transport.discard_job(services.redis, retry.run_id, retry.queue)
        if retry.delay > 0:
            await transport.enqueue_deferred_dispatch(
                services.redis, retry.run_id, retry.queue, retry.retry_at
            )
        else:
            await transport.enqueue_dispatch(services.redis, retry.run_id, retry.queue)
    if rows:
        logger.warning(
            "reaped %s lost runs (%s retried, %s failed, %s cancelled)",
            len(rows),
            len(retried),
            len(failed),
            len(cancelled),
        )
    return ReapReport(
        retried=[retry.run_id for retry in retried], failed=failed, cancelled=cancelled
    )


async def reconcile_pending_runs(services: Services) -> list[int]:
    """Queue again every older pending run that Redis no longer holds; returns their ids."""
    async with services.sessions() as session:
        rows = (
            await session.execute(
                select(JobRun.id, JobRun.queue)
                .where(
                    JobRun.status == RunStatus.PENDING.value,
                    JobRun.queued_at < func.now() - timedelta(seconds=RECONCILE_MIN_AGE_S),
                    # A run waiting for its next attempt is due only at its retry_at.
                    or_(JobRun.retry_at.is_(None), JobRun.retry_at <= func.now()),
                )
                .order_by(JobRun.queued_at)
                .limit(RECONCILE_BATCH)
            )
        ).all()
    requeued: list[int] = []
    for row in rows:
        if not await transport.is_queued(services.redis, row.id):
            await transport.enqueue_dispatch(services.redis, row.id, row.queue)
            requeued.append(row.id)
    if requeued:
        logger.warning("re-enqueued %s pending runs missing from Redis", len(requeued))
    return requeued


async def reaper_cron(ctx: WorkerContext) -> int:
    report = await reap_lost_runs(ctx["services"])
    return len(report.retried) + len(report.failed) + len(report.cancelled)


async def reconciler_cron(ctx: WorkerContext) -> int:
    return len(await reconcile_pending_runs(ctx["services"]))

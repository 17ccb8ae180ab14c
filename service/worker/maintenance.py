"""Periodic upkeep run by arq cron in the scheduler-queue workers.

- ``reap_lost_runs``: a running run whose heartbeat expired lost its worker; it is retried
  (attempt + 1) while the run's retry policy allows, else failed with ``worker lost``.
- ``reconcile_pending_runs``: a pending run whose arq job is missing from Redis (a crash
  between commit and enqueue, Redis data loss) is queued again — a run waiting for its
  next attempt only once its ``retry_at`` has passed — and a queued job whose run has ended
  (or was deleted) is removed.

A run the reaper ends or retries loses its old job in the same pass (with the dead
worker's in-progress key), in one Redis round trip.

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
from service.runs.lifecycle import close_open_targets, wake_waiters
from service.runs.retries import AttemptEnd, RetryOn, RetryPolicy, RetryScheduled, retry_locked
from service.worker.context import WorkerContext

logger = logging.getLogger(__name__)

REAP_BATCH = 500
RECONCILE_BATCH = 1000
# A pending run younger than this may still be between its commit and its enqueue.
RECONCILE_MIN_AGE_S = 30
WORKER_LOST = "worker lost"
# Due jobs per queue the reconciler looks at for runs that ended (arq's poll reads 5 ×
# max_jobs of them).
SWEEP_WINDOW = 1000
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
    ended: list[tuple[int, str]] = []
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
            ended.append((row.id, row.queue))
            await session.execute(update(JobRun).where(*guard).values(**values))
            await close_open_targets(session, row.id)
        await outbox.record_facts(session, failed, FactKind.LOST)
    # The dead worker's job still sits in Redis under its in-progress key, which would keep
    # it (and, once many pile up, every job behind it) from being taken: an ended run's job
    # goes, a run retried at once gets a fresh one — one round trip each; a run retried
    # after a backoff is queued afresh, due at its retry_at.
    await transport.discard_jobs(services.redis, ended)
    await transport.requeue_jobs(
        services.redis, [(retry.run_id, retry.queue) for retry in retried if retry.delay <= 0]
    )
    for retry in retried:
        if retry.delay > 0:
            await transport.discard_job(services.redis, retry.run_id, retry.queue)
            await transport.enqueue_deferred_dispatch(
                services.redis, retry.run_id, retry.queue, retry.retry_at
            )
    for run_id, _ in ended:
        await wake_waiters(services.sessions, services.redis, run_id)
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


async def reconcile_pending_runs(
    services: Services, *, min_age: float = RECONCILE_MIN_AGE_S
) -> list[int]:
    """Queue again every pending run older than ``min_age`` seconds that Redis no longer
    holds, and remove the jobs of runs that ended (``sweep_ended_jobs``); returns the ids
    of the runs queued again."""
    async with services.sessions() as session:
        rows = (
            await session.execute(
                select(JobRun.id, JobRun.queue)
                .where(
                    JobRun.status == RunStatus.PENDING.value,
                    JobRun.queued_at < func.now() - timedelta(seconds=min_age),
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
    await sweep_ended_jobs(services)
    return requeued


async def sweep_ended_jobs(services: Services) -> list[int]:
    """Remove queued jobs whose run has ended or no longer exists; returns their run ids.

    Looks at the window of each queue arq's poll reads (due jobs, oldest first), so jobs
    nobody will ever run (a run ended by a path that could not reach Redis) never hide the
    jobs behind them.
    """
    queues = list(dict.fromkeys(services.settings.queues.names()))
    due = {
        queue: await transport.due_run_jobs(services.redis, queue, SWEEP_WINDOW) for queue in queues
    }
    ids = sorted({run_id for run_ids in due.values() for run_id in run_ids})
    if not ids:
        return []
    async with services.sessions() as session:
        active = set(
            await session.scalars(
                select(JobRun.id).where(
                    JobRun.id.in_(ids),
                    JobRun.status.in_([RunStatus.PENDING.value, RunStatus.RUNNING.value]),
                )
            )
        )
    stale = [
        (run_id, queue)
        for queue, run_ids in due.items()
        for run_id in run_ids
        if run_id not in active
    ]
    await transport.discard_jobs(services.redis, stale)
    if stale:
        logger.warning("removed %s queued jobs of runs that ended", len(stale))
    return [run_id for run_id, _ in stale]


async def reconcile_after_outage(services: Services) -> None:
    """Redis is back after an outage (maybe restarted without its data): queue every
    pending run it lost at once, whatever its age, instead of at the next passes.

    Queueing is idempotent (one job id per run), so a run still being queued by whoever
    created it is not queued twice.
    """
    try:
        requeued = await reconcile_pending_runs(services, min_age=0)
    except Exception as exc:  # the reconciler cron covers anything missed here
        logger.warning("reconciling after the Redis outage failed: %s: %s", type(exc).__name__, exc)
        return
    logger.info("reconciled after the Redis outage: %s runs queued again", len(requeued))


async def reaper_cron(ctx: WorkerContext) -> int:
    report = await reap_lost_runs(ctx["services"])
    return len(report.retried) + len(report.failed) + len(report.cancelled)


async def reconciler_cron(ctx: WorkerContext) -> int:
    return len(await reconcile_pending_runs(ctx["services"]))

"""``dispatch_job(ctx, run_id)``: the single arq entry point for every job type.

Take the run (pending → running, attempt + 1), check that the principal it runs as may
use everything it names (``service.runs.authorization``), resolve its targets, run its
executor with a heartbeat beside it, and record how it ended — result and target rows
are kept whatever the ending. A delivery of a run that is not pending does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.worker import Retry
from pydantic import ValidationError

from executors import get_executor
from executors.base import JobContext, JobResult, ResolveContext, Target
from executors.services import Services
from service.db.engine import is_lost_connection
from service.db.models import Outcome, RunStatus
from service.errors import OpsjobsError, TargetResolutionError, UnknownJobType
from service.queue.leases import Slot, SlotsBusy
from service.runs import lifecycle, retries
from service.runs.authorization import authorize_start
from service.runs.lifecycle import RunEnd, RunStart
from service.runs.reporting import RunReporter
from service.runs.retries import AttemptEnd, RetryOn
from service.worker.context import WorkerContext
from service.worker.device_windows import devices_in_maintenance

logger = logging.getLogger(__name__)

WORKER_SHUTDOWN_REASON = "worker shut down; run returned to the queue"
# How often a run queued behind another run of its schedule looks again; the run it waits
# for wakes it when it ends (``lifecycle.wake_waiters``), this is the fallback.
WAIT_RETRY_S = 5
# How often a run whose template's concurrency slots are all held looks again.
SLOT_RETRY_S = 1
# When a run's job comes back after PostgreSQL could not be reached to take it.
DATABASE_RETRY_S = 2


async def dispatch_job(ctx: WorkerContext, run_id: int) -> str:
    """Execute one run; returns the status it ended with (for arq's logs only)."""
    services = ctx["services"]
    outage = ctx.get("database_outage")
    try:
        start = await lifecycle.mark_running(services.sessions, run_id, services.worker_id)
    except lifecycle.RunMustWait as wait:
        # Overlap policy "queue": try again later, still pending and cancellable meanwhile.
        logger.info("run cannot start yet: %s", wait, extra={"run_id": run_id})
        raise Retry(defer=WAIT_RETRY_S) from None
    except Exception as error:
        if not is_lost_connection(error):
            raise
        # The run is still pending in the record (or the reaper will find it): the job
        # comes back once PostgreSQL answers again.
        if outage is not None:
            outage.failed(error)
        raise Retry(defer=DATABASE_RETRY_S) from None
    if outage is not None:
        outage.recovered()
    if start is None:
        logger.info("delivery of a run that is not pending ignored", extra={"run_id": run_id})
        return "ignored"
    if start.max_concurrent_runs is None:
        return await _run_taken(services, start)
    slot = Slot(f"template:{start.template_id}", start.max_concurrent_runs)
    try:
        async with services.leases.hold([slot], wait=False):
            return await _run_taken(services, start)
    except SlotsBusy:
        reason = f"waiting: template {start.template_id} runs at most {slot.limit} at once"
        await lifecycle.untake(services.sessions, run_id, start.attempt, reason)
        logger.info("run waits for a slot of its template", extra={"run_id": run_id})
        raise Retry(defer=SLOT_RETRY_S) from None


async def _run_taken(services: Services, start: RunStart) -> str:
    """Run a taken run to its end and record it."""
    run_id = start.run_id
    reporter = RunReporter(
        sessions=services.sessions,
        events=services.events,
        run_id=run_id,
        attempt=start.attempt,
        min_db_interval=services.settings.worker.progress_min_interval,
    )
    await reporter.state(RunStatus.RUNNING.value, attempt=start.attempt)
    end = await _run_with_heartbeat(services, start, reporter)
    if end.failure is not None:
        await _retry_if_allowed(services, start, end, reporter)
    recorded = await lifecycle.finish_run(
        services.sessions,
        run_id,
        start.attempt,
        RunEnd(
            status=end.status,
            outcome=end.outcome,
            summary=end.summary,
            result=end.result,
            error=end.error,
            reason=end.reason,
            progress=reporter.last_progress,
        ),
        has_targets=_may_have_targets(start),
    )
    if recorded:
        await reporter.state(end.status.value, outcome=end.outcome, summary=end.summary)
        if start.schedule_id is not None:
            # Only a schedule's runs have runs queued behind them (overlap policy "queue").
            await lifecycle.wake_waiters(services.sessions, services.redis, run_id)
    logger.info(
        "run finished as %s",
        end.status.value,
        extra={"run_id": run_id, "attempt": start.attempt, "recorded": recorded},
    )
    return end.status.value


async def _run_with_heartbeat(services: Services, start: RunStart, reporter: RunReporter) -> RunEnd:
    partial: dict[str, Any] = {}
    work = asyncio.create_task(_execute(services, start, reporter, partial))
    heartbeat = _Heartbeat(services, start, work)
    timeout = _timeout_for(services, start)
    try:
        async with asyncio.timeout(timeout):
            result = await work
    except TimeoutError:
        return _failed(f"timed out after {timeout:g} s", partial, RetryOn.TIMEOUT)
    except asyncio.CancelledError:
        this_task = asyncio.current_task()
        shutting_down = this_task is not None and this_task.cancelling() > 0
        if await lifecycle.cancel_requested(services.sessions, start.run_id):
            return RunEnd(
                status=RunStatus.CANCELLED,
                outcome=Outcome.UNKNOWN.value,
                summary="cancelled while running",
                result=partial or None,
                reason="cancelled while running",
            )
        if shutting_down:
            if await lifecycle.return_to_pending(
                services.sessions, start.run_id, start.attempt, WORKER_SHUTDOWN_REASON
            ):
                await retries.record_interrupted(
                    services.sessions,
                    start.run_id,
                    start.attempt,
                    services.worker_id,
                    WORKER_SHUTDOWN_REASON,
                )
            raise
        return _failed("run was taken from this worker", partial)
    except (OpsjobsError, ValidationError) as exc:
        return _failed(str(exc), partial)
    except Exception as exc:
        logger.exception("executor raised", extra={"run_id": start.run_id})
        return _failed(f"{type(exc).__name__}: {exc}", partial)
    finally:
        await heartbeat.stop()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    return RunEnd(
        status=RunStatus.COMPLETED,
        outcome=result.outcome.value,
        summary=result.summary,
        result=result.data,
    )


def _may_have_targets(start: RunStart) -> bool:
    try:
        return get_executor(start.job_type).resolve_targets is not None
    except UnknownJobType:
        return True


def _failed(error: str, partial: dict[str, Any], failure: RetryOn = RetryOn.FAILED) -> RunEnd:
    return RunEnd(
        status=RunStatus.FAILED,
        outcome=Outcome.UNKNOWN.value,
        summary=error,
        result=partial or None,
        error=error,
        failure=failure.value,
    )


async def _retry_if_allowed(
    services: Services, start: RunStart, end: RunEnd, reporter: RunReporter
) -> None:
    """End a failed attempt as a retry when the run's policy covers it, by raising arq's
    ``Retry``: this attempt's job is the run's job, so arq defers that same job to
    ``retry_at`` (a second job under the run's job id cannot exist while this one runs)."""
    assert end.failure is not None
    scheduled = await retries.schedule_retry(
        services.sessions,
        start.run_id,
        start.attempt,
        AttemptEnd(
            failure=RetryOn(end.failure),
            error=end.error,
            summary=end.summary,
            result=end.result,
            outcome=end.outcome,
        ),
    )
    if scheduled is None:
        return
    logger.info(
        "attempt %s of %s %s; next attempt in %.1f s",
        scheduled.attempt,
        scheduled.max_attempts,
        scheduled.failure.value,
        scheduled.delay,
        extra={"run_id": start.run_id, "attempt": start.attempt},
    )
    try:
        await reporter.retry_scheduled(scheduled, error=end.error)
    except Exception as exc:
        # The row is the record; watchers see the retry there.
        logger.warning("retry event not published: %s", exc, extra={"run_id": start.run_id})
    raise Retry(defer=scheduled.delay)


def _timeout_for(services: Services, start: RunStart) -> float:
    worker = services.settings.worker
    requested = start.timeout_seconds or worker.default_timeout
    return float(min(requested, worker.max_timeout))


async def _execute(
    services: Services, start: RunStart, reporter: RunReporter, partial: dict[str, Any]
) -> JobResult:
    executor = get_executor(start.job_type)
    config = executor.config.model_validate(start.parameters)
    await authorize_start(services.sessions, start, config)
    targets: list[Target] = []
    if executor.resolve_targets is not None:
        targets = await executor.resolve_targets(
            ResolveContext(run_id=start.run_id, services=services), config
        )
        if start.targets is not None:
            targets = _keep_requested(targets, start.targets)
        await lifecycle.replace_targets(
            services.sessions, start.run_id, [(target.key, target.name) for target in targets]
        )
    skipped = await devices_in_maintenance(services, start, targets) if targets else {}
    job: JobContext[Any] = JobContext(
        run_id=start.run_id,
        attempt=start.attempt,
        job_type=executor.job_type,
        config=config,
        targets=targets,
        reporter=reporter,
        services=services,
        partial=partial,
        skipped=skipped,
    )
    return await executor.execute(job)


def _keep_requested(resolved: list[Target], requested: list[Any]) -> list[Target]:
    """Narrow to the targets the run was created for (a retry of failed targets).

    A requested target that no longer resolves fails the run: nothing narrows silently.
    """
    wanted = [str(item["key"]) for item in requested if isinstance(item, dict) and "key" in item]
    by_key = {target.key: target for target in resolved}
    missing = [key for key in wanted if key not in by_key]
    if missing:
        raise TargetResolutionError(f"targets no longer resolvable: {', '.join(missing)}")
    return [by_key[key] for key in wanted]


class _Heartbeat:
    """Refreshes the run's heartbeat every interval while its work runs.

    Until the first beat is due only a timer exists: most runs end before it, and a task
    per run would cost more than the run's own statements.
    """

    def __init__(self, services: Services, start: RunStart, work: asyncio.Task[JobResult]) -> None:
        self._services = services
        self._start = start
        self._work = work
        self._interval = services.settings.worker.heartbeat_interval
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._begin)

    def _begin(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        """Beat; stop the work when a cancel is requested or the run is lost."""
        start = self._start
        while not self._work.done():
            try:
                beat = await lifecycle.record_heartbeat(
                    self._services.sessions, start.run_id, start.attempt
                )
            except Exception as error:
                if not is_lost_connection(error):
                    raise
                # PostgreSQL is away: beat again next interval (the reaper allows
                # ``reaper.lost_after`` without a beat).
                await asyncio.sleep(self._interval)
                continue
            if beat.cancel_requested or not beat.still_ours:
                logger.info(
                    "stopping run: %s",
                    "cancel requested" if beat.cancel_requested else "run no longer ours",
                    extra={"run_id": start.run_id},
                )
                self._work.cancel()
                return
            await asyncio.sleep(self._interval)

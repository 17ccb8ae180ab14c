"""Claiming due schedules: one transaction inserts the runs of every due fire, then they are queued.

A claim locks due schedules with ``FOR UPDATE SKIP LOCKED`` (served by the partial index
``ix_job_schedules_due``), decides what each due fire becomes under the schedule's misfire
and overlap policies, inserts the run rows, advances ``next_run_at`` and commits — and only
then queues the pending runs (invariant 2). Any number of claimers may run at once: a locked
schedule is skipped, an advanced one is no longer due, and the unique constraint on
``(schedule_id, scheduled_for)`` turns a second insert for the same fire into nothing
(invariant 8). A crash between commit and enqueue leaves pending runs the reconciler queues.

Misfires (fires older than ``scheduler.misfire_grace`` when claimed, e.g. after an outage):
``skip`` records them as skipped runs with reason ``missed`` and runs only a fire that is on
time; ``run_once`` runs the latest due fire and records the others as missed; ``run_all``
runs the latest ``misfire_cap`` due fires and records older ones as missed. At most
``scheduler.max_missed_recorded`` missed fires of one schedule get a row per claim; the rest
are counted in the log.

A fire inside a maintenance window covering the schedule is recorded as a skipped run
with reason ``maintenance window "<name>"``, so the ledger of fires stays complete.

Overlap, judged against runs of the schedule that were pending or running before the claim:
``skip`` records the fire as skipped naming the blocking run; ``cancel_previous`` cancels
the blocking run and runs; ``allow`` runs beside it; ``queue`` runs after it (the new run
records ``wait_for_run_id`` and no worker takes it before that run has ended). Fires of one
``run_all`` catch-up all run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from arq.connections import ArqRedis
from sqlalchemy import DateTime, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from executors import get_executor
from service.access.principals import SYSTEM_NAME
from service.db.engine import SessionFactory
from service.db.models import JobRun, JobSchedule, JobTemplate, RunStatus, TriggeredBy
from service.db.notify_models import MaintenanceWindow
from service.errors import Conflict, InvalidInput, NotFound
from service.keyspace import keyspace_of
from service.notify import outbox
from service.notify.outbox import FactKind
from service.queue import transport
from service.runs.authorization import mark_private
from service.runs.lifecycle import RunRequest, request_cancel, row_values
from service.runs.requests import template_request
from service.scheduling.specs import ScheduleSpec, due_fires, next_fire
from service.scheduling.stored import spec_of
from service.scheduling.windows import Window, covering, skipped_reason
from service.settings import Settings

logger = logging.getLogger(__name__)

MISSED = "missed"

_SCHEDULES = cast(Table, JobSchedule.__table__)
_ADVANCE = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == bindparam("b_id"))
    .values(
        next_run_at=bindparam("b_next", type_=DateTime(timezone=True)),
        last_run_at=func.coalesce(
            bindparam("b_last", type_=DateTime(timezone=True)), _SCHEDULES.c.last_run_at
        ),
        # The scheduler moving a schedule on is not an edit of it.
        updated_at=_SCHEDULES.c.updated_at,
    )
)
_INSERT_RUNS = (
    pg_insert(JobRun)
    .on_conflict_do_nothing(constraint="uq_job_runs_schedule_fire")
    .returning(JobRun.id, JobRun.status, JobRun.queue)
)
# Literal statuses so the planner can use the partial index ix_job_runs_active_schedule.
_ACTIVE = text("job_runs.status IN ('pending', 'running')")


class SchedulerStores(Protocol):
    """What a claim needs: the worker's Services, or any holder of these three."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> SessionFactory: ...

    @property
    def redis(self) -> ArqRedis: ...


@dataclass(frozen=True)
class FirePlan:
    """What the due fires of one schedule become at a claim."""

    run: tuple[datetime, ...]
    missed: tuple[datetime, ...]
    unrecorded: int
    next_after: datetime | None


def plan_fires(
    spec: ScheduleSpec,
    *,
    previous: datetime,
    now: datetime,
    misfire_policy: str,
    misfire_cap: int,
    grace: timedelta,
    record_limit: int,
) -> FirePlan:
    """Split the fires due at ``now`` (from ``previous``, the stored next fire) into fires to
    run and missed fires to record, per the misfire policy; pure."""
    keep = max(1, misfire_cap) if misfire_policy == "run_all" else 1
    due = due_fires(spec, previous, now, record_limit)
    if due.total_due == 0:
        return FirePlan((), (), 0, due.next_after)
    tail = _last_fires(spec, due.fires[-1], now, keep) if due.omitted else due.fires[-keep:]
    if misfire_policy == "skip":
        run = tuple(fire for fire in tail[-1:] if fire > now - grace)
    else:
        run = tail
    missed = tuple(fire for fire in due.fires if fire not in run)
    return FirePlan(run, missed, due.total_due - len(missed) - len(run), due.next_after)


def _last_fires(
    spec: ScheduleSpec, first: datetime, now: datetime, keep: int
) -> tuple[datetime, ...]:
    """The last ``keep`` fires at or before ``now``, from a fire ``first`` of the schedule."""
    if spec.schedule_type == "interval" and spec.interval_minutes is not None:
        step = timedelta(minutes=spec.interval_minutes)
        until = min(now, spec.end_at) if spec.end_at else now
        last = first + ((until - first) // step) * step
        return tuple(last - i * step for i in reversed(range(keep)) if last - i * step >= first)
    fires: deque[datetime] = deque([first], maxlen=keep)
    while (fire := next_fire(spec, fires[-1])) is not None and fire <= now:
        fires.append(fire)
    return tuple(fires)


@dataclass(frozen=True)
class ClaimReport:
    """One claim: schedules claimed, runs queued, fires recorded as skipped or failed, and how
    late the oldest claimed fire was (seconds)."""

    claimed: int
    queued: tuple[int, ...]
    skipped: int
    failed: int
    lag: float


@dataclass
class _Claim:
    rows: list[dict[str, Any]]
    advances: list[dict[str, Any]]
    cancels: list[int]


async def claim_due_schedules(services: SchedulerStores, now: datetime, batch: int) -> ClaimReport:
    """Claim up to ``batch`` due schedules, record their fires and queue the pending runs."""
    settings = services.settings
    async with services.sessions.begin() as session:
        claimed = (
            await session.execute(
                select(JobSchedule, JobTemplate)
                .join(JobTemplate, JobTemplate.id == JobSchedule.template_id)
                .where(
                    JobSchedule.is_active,
                    JobSchedule.next_run_at.is_not(None),
                    JobSchedule.next_run_at <= now,
                )
                .order_by(JobSchedule.next_run_at)
                .limit(batch)
                .with_for_update(of=JobSchedule, skip_locked=True)
            )
        ).all()
        if not claimed:
            return ClaimReport(0, (), 0, 0, 0.0)
        active = await _active_runs(session, [schedule.id for schedule, _ in claimed])
        windows = [Window.of(row) for row in await session.scalars(select(MaintenanceWindow))]
        requests = await _requests(session, settings, claimed)
        claim = _Claim([], [], [])
        for (schedule, template), (request, error) in zip(claimed, requests, strict=True):
            _plan_schedule(
                settings,
                claim,
                (schedule, template),
                (request, error),
                now,
                active.get(schedule.id),
                windows,
            )
        inserted = (await session.execute(_INSERT_RUNS, claim.rows)).all() if claim.rows else []
        # A fire that cannot run (parameters no longer valid) failed: someone should hear.
        failed_now = [row.id for row in inserted if row.status == RunStatus.FAILED.value]
        await outbox.record_facts(session, failed_now, FactKind.FINISHED)
        conn = await session.connection()
        await conn.execute(_ADVANCE, claim.advances)
    for run_id in dict.fromkeys(claim.cancels):
        await _cancel_blocking(services, run_id)
    pending = [(row.id, row.queue) for row in inserted if row.status == RunStatus.PENDING.value]
    await transport.enqueue_dispatches(services.redis, pending)
    oldest = claimed[0][0].next_run_at
    return ClaimReport(
        claimed=len(claimed),
        queued=tuple(run_id for run_id, _ in pending),
        skipped=sum(row.status == RunStatus.SKIPPED.value for row in inserted),
        failed=sum(row.status == RunStatus.FAILED.value for row in inserted),
        lag=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )


async def _active_runs(
    session: AsyncSession, schedule_ids: Sequence[int]
) -> dict[int, tuple[int, str]]:
    """The oldest pending or running run of each schedule that has one."""
    rows = await session.execute(
        select(JobRun.schedule_id, JobRun.id, JobRun.status)
        .where(JobRun.schedule_id.in_(schedule_ids), _ACTIVE)
        .order_by(JobRun.id.desc())
    )
    return {row.schedule_id: (row.id, row.status) for row in rows}


def _plan_schedule(
    settings: Settings,
    claim: _Claim,
    claimed: tuple[JobSchedule, JobTemplate],
    made: tuple[RunRequest, str | None],
    now: datetime,
    blocking: tuple[int, str] | None,
    windows: Sequence[Window],
) -> None:
    """What the due fires of one claimed schedule become; ``made`` is its run request, or
    a stand-in and why no run can be made."""
    schedule, template = claimed
    request, error = made
    previous = schedule.next_run_at
    assert previous is not None  # the claim query selects only schedules with a next fire
    try:
        spec = spec_of(schedule)
    except InvalidInput as exc:
        # A stored spec that no longer validates (e.g. a time zone gone from the system's
        # database) stops the schedule, visibly: a failed run says why.
        logger.error(
            "schedule %s has an invalid spec: %s",
            schedule.job_identifier,
            exc.message,
            extra={"schedule_id": schedule.id},
        )
        claim.rows.append(_row(request, previous, RunStatus.FAILED, now, error=exc.message))
        claim.advances.append({"b_id": schedule.id, "b_next": None, "b_last": None})
        return
    scheduler = settings.scheduler
    plan = plan_fires(
        spec,
        previous=previous,
        now=now,
        misfire_policy=schedule.misfire_policy,
        misfire_cap=schedule.misfire_cap,
        grace=timedelta(seconds=scheduler.misfire_grace),
        record_limit=scheduler.max_missed_recorded,
    )
    if plan.unrecorded:
        logger.warning(
            "schedule %s missed %s fires that were not recorded",
            schedule.job_identifier,
            plan.unrecorded,
            extra={"schedule_id": schedule.id},
        )
    claim.rows.extend(
        _row(request, fire, RunStatus.SKIPPED, now, reason=MISSED) for fire in plan.missed
    )
    queued = False
    for fire in plan.run:
        holding = covering(
            windows,
            fire,
            template_id=template.id,
            schedule_id=schedule.id,
            job_type=template.job_type,
        )
        if holding:
            reason = skipped_reason(holding)
            claim.rows.append(_row(request, fire, RunStatus.SKIPPED, now, reason=reason))
        elif error is not None:
            claim.rows.append(_row(request, fire, RunStatus.FAILED, now, error=error))
        elif blocking is not None and schedule.overlap_policy == "skip":
            reason = f"overlap: run {blocking[0]} is still {blocking[1]}"
            claim.rows.append(_row(request, fire, RunStatus.SKIPPED, now, reason=reason))
        else:
            wait_for = None
            if blocking is not None and schedule.overlap_policy == "cancel_previous":
                claim.cancels.append(blocking[0])
            elif blocking is not None and schedule.overlap_policy == "queue":
                wait_for = blocking[0]
            claim.rows.append(_row(request, fire, RunStatus.PENDING, now, wait_for_run_id=wait_for))
            queued = True
    claim.advances.append(
        {"b_id": schedule.id, "b_next": plan.next_after, "b_last": now if queued else None}
    )


async def _requests(
    session: AsyncSession,
    settings: Settings,
    claimed: Sequence[tuple[JobSchedule, JobTemplate]],
) -> list[tuple[RunRequest, str | None]]:
    """Each claimed schedule's run request (or a stand-in and why no run can be made),
    private from its insert when it uses a private resource."""
    # What the claim holds already: a private schedule or template makes a private run.
    requests = [
        (_private_if(request, not (schedule.is_global and template.is_global)), error)
        for schedule, template in claimed
        for request, error in [_request(settings, schedule, template)]
    ]
    valid = [request for request, error in requests if error is None]
    marked = iter(await mark_private(session, valid, get_executor))
    return [(next(marked), None) if error is None else (r, error) for r, error in requests]


def _private_if(request: RunRequest, private: bool) -> RunRequest:
    if not private:
        return request
    return dataclasses.replace(request, private_to=request.executed_by or SYSTEM_NAME)


def _request(
    settings: Settings, schedule: JobSchedule, template: JobTemplate
) -> tuple[RunRequest, str | None]:
    """The run request of a fire, or a stand-in and the reason no run can be made."""
    try:
        request = template_request(
            settings,
            get_executor,
            template,
            overrides=schedule.parameters,
            triggered_by=TriggeredBy.SCHEDULE,
            executed_by=schedule.owner,
            job_name=schedule.job_identifier,
            schedule_id=schedule.id,
            credential_id=schedule.credential_id,
        )
    except InvalidInput as exc:
        stand_in = RunRequest(
            job_type=template.job_type,
            job_name=schedule.job_identifier,
            queue=template.queue or settings.queues.default,
            parameters=schedule.parameters,
            triggered_by=TriggeredBy.SCHEDULE,
            executed_by=schedule.owner,
            template_id=template.id,
            schedule_id=schedule.id,
            credential_id=schedule.credential_id,
        )
        return stand_in, f"{exc.message}: {exc.details}" if exc.details else exc.message
    return request, None


def _row(
    request: RunRequest,
    fire: datetime,
    status: RunStatus,
    now: datetime,
    *,
    reason: str | None = None,
    error: str | None = None,
    wait_for_run_id: int | None = None,
) -> dict[str, Any]:
    return {
        **row_values(request),
        "scheduled_for": fire,
        "wait_for_run_id": wait_for_run_id,
        "status": status.value,
        "reason": reason,
        "error": error,
        "summary": error,
        "finished_at": None if status is RunStatus.PENDING else now,
    }


async def _cancel_blocking(services: SchedulerStores, run_id: int) -> None:
    try:
        await request_cancel(services.sessions, services.redis, run_id, "scheduler")
    except (Conflict, NotFound):
        return  # it ended on its own meanwhile


@dataclass(frozen=True)
class TickReport:
    """One scheduler tick: when it ran, how long it took (seconds) and what it did."""

    at: datetime
    duration: float
    claimed: int
    queued: int
    skipped: int
    failed: int
    lag: float


async def tick(services: SchedulerStores, now: datetime | None = None) -> TickReport:
    """Claim batches of due schedules until fewer than a batch remain; record the tick."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    batch = services.settings.scheduler.batch
    claimed = queued = skipped = failed = 0
    lag = 0.0
    while True:
        report = await claim_due_schedules(services, now, batch)
        claimed += report.claimed
        queued += len(report.queued)
        skipped += report.skipped
        failed += report.failed
        lag = max(lag, report.lag)
        if report.claimed < batch:
            break
    result = TickReport(now, time.perf_counter() - started, claimed, queued, skipped, failed, lag)
    await cast(
        Awaitable[int],
        services.redis.hset(
            keyspace_of(services.redis).scheduler_tick(),
            mapping={
                "at": result.at.isoformat(),
                "duration": f"{result.duration:.6f}",
                "claimed": result.claimed,
                "queued": result.queued,
                "lag": f"{result.lag:.3f}",
            },
        ),
    )
    return result


async def last_tick(redis: ArqRedis) -> dict[str, str]:
    """The record of the most recent tick (empty before the first)."""
    raw = await cast(
        Awaitable[dict[bytes, bytes]], redis.hgetall(keyspace_of(redis).scheduler_tick())
    )
    return {key.decode(): value.decode() for key, value in raw.items()}

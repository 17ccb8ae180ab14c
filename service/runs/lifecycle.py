"""The run state machine and ``enqueue_run``.

Every status change is one conditional UPDATE (``WHERE status IN (allowed)``), so a late
writer can never overwrite a newer state: a completion arriving after a cancel, or a
worker that lost its run to the reaper (the ``attempt`` guard), changes nothing.

    pending → running → completed | failed | cancelled
    pending → cancelled | skipped
    running → pending        (worker shutdown or lost worker with retries left; or taken
                              while its template's concurrency slots were all held)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import (
    BindParameter,
    Select,
    String,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import ClauseElement

from service.access.audit import AuditEntry
from service.db.engine import (
    DriverStatement,
    SessionFactory,
    is_lost_connection,
    retry_lost,
    single_statement,
)
from service.db.models import (
    TERMINAL_STATUSES,
    JobRun,
    JobRunTarget,
    JobTemplate,
    RunStatus,
    TargetStatus,
    TriggeredBy,
)
from service.db.security_models import AuditEvent, IdempotencyKey
from service.errors import Conflict, NotFound
from service.notify import outbox
from service.queue import transport
from service.queue.outage import REDIS_UNAVAILABLE
from service.runs.reporting import Progress

logger = logging.getLogger(__name__)

ALLOWED_FROM: dict[RunStatus, tuple[RunStatus, ...]] = {
    RunStatus.RUNNING: (RunStatus.PENDING,),
    RunStatus.COMPLETED: (RunStatus.RUNNING,),
    RunStatus.FAILED: (RunStatus.RUNNING,),
    RunStatus.CANCELLED: (RunStatus.PENDING, RunStatus.RUNNING),
    RunStatus.SKIPPED: (RunStatus.PENDING,),
    RunStatus.PENDING: (RunStatus.RUNNING,),
}


@dataclass(frozen=True)
class RunRequest:
    """Everything needed to create a run; parameters are already validated."""

    job_type: str
    job_name: str
    queue: str
    parameters: Mapping[str, Any]
    triggered_by: TriggeredBy
    executed_by: str | None = None
    # Set when the run uses a private resource: the principal it then belongs to.
    private_to: str | None = None
    template_id: int | None = None
    schedule_id: int | None = None
    scheduled_for: datetime | None = None
    retry_of_id: int | None = None
    wait_for_run_id: int | None = None
    credential_id: int | None = None
    timeout_seconds: int | None = None
    max_attempts: int = 1
    targets: Sequence[Mapping[str, Any]] | None = None
    # The retry policy beyond max_attempts (``RetryPolicy.stored()``); None: the default.
    retry_policy: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunStart:
    """What a worker learns when it takes a run: enough to execute it without another read."""

    run_id: int
    attempt: int
    job_type: str
    parameters: dict[str, Any]
    timeout_seconds: int | None
    credential_id: int | None
    targets: list[Any] | None
    template_id: int | None = None
    schedule_id: int | None = None
    # The template's cap on its runs at once over every worker (None: no cap).
    max_concurrent_runs: int | None = None
    # Who the run runs as, for the check before it uses anything.
    triggered_by: str = TriggeredBy.API.value
    executed_by: str | None = None
    private_to: str | None = None


@dataclass(frozen=True)
class RunEnd:
    status: RunStatus
    outcome: str | None = None
    summary: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    progress: Progress | None = None
    # For a failed end: which failure it was, as a retry policy names it (failed, timeout).
    failure: str | None = None


def _insert_run_statements(*, keyed: bool) -> tuple[DriverStatement, DriverStatement]:
    """INSERT of one pending run, alone and with its audit row (one statement each).

    ``keyed``: the same statement also records the run's id on the reservation of the
    request's ``Idempotency-Key`` (:data:`IDEMPOTENCY_RESERVATION`), so whether the run
    was committed is known even when the answer to the request was lost.
    """
    json_params = {"parameters", "targets", "retry_policy"}
    return (
        DriverStatement(_insert_run(audited=False, keyed=keyed), json_params=json_params),
        DriverStatement(
            _insert_run(audited=True, keyed=keyed), json_params=json_params | {"audit_details"}
        ),
    )


def _insert_run(*, audited: bool, keyed: bool) -> ClauseElement:
    """One statement, built afresh (its parts are not shared between statements)."""
    columns = JobRun.__table__.c
    names = list(row_values(RunRequest("", "", "", {}, TriggeredBy.API)))  # the columns it sets
    insert_run = (
        insert(JobRun)
        .values({name: bindparam(name, type_=columns[name].type) for name in names})
        .returning(*columns)
    )
    if not audited and not keyed:
        return insert_run
    new_run = insert_run.cte("new_run")
    statement = select(new_run)
    if audited:
        audit_row = insert(AuditEvent).from_select(
            ["actor", "action", "resource_type", "resource_id", "source_ip", "details"],
            select(
                bindparam("audit_actor", type_=String),
                bindparam("audit_action", type_=String),
                bindparam("audit_resource_type", type_=String),
                cast(new_run.c.id, String),
                bindparam("audit_source_ip", type_=String),
                bindparam("audit_details", type_=AuditEvent.__table__.c.details.type),
            ).select_from(new_run),
        )
        statement = statement.add_cte(audit_row.cte("audit_row"))
    if keyed:
        key_row = (
            update(IdempotencyKey)
            .where(
                IdempotencyKey.principal == bindparam("key_principal"),
                IdempotencyKey.key == bindparam("key_key"),
            )
            .values(run_id=select(new_run.c.id).scalar_subquery())
        )
        statement = statement.add_cte(key_row.cte("key_row"))
    return statement


#: ``(principal, key)`` of the ``Idempotency-Key`` reservation of the request being
#: served, set by the API around the work of a run-creating request.
IDEMPOTENCY_RESERVATION: ContextVar[tuple[str, str] | None] = ContextVar(
    "idempotency_reservation", default=None
)


def row_values(request: RunRequest) -> dict[str, Any]:
    return {
        "job_type": request.job_type,
        "job_name": request.job_name,
        "queue": request.queue,
        "parameters": dict(request.parameters),
        "triggered_by": request.triggered_by.value,
        "executed_by": request.executed_by,
        "private_to": request.private_to,
        "template_id": request.template_id,
        "schedule_id": request.schedule_id,
        "scheduled_for": request.scheduled_for,
        "retry_of_id": request.retry_of_id,
        "wait_for_run_id": request.wait_for_run_id,
        "credential_id": request.credential_id,
        "timeout_seconds": request.timeout_seconds,
        "max_attempts": request.max_attempts,
        "targets": list(request.targets) if request.targets is not None else None,
        "retry_policy": dict(request.retry_policy) if request.retry_policy is not None else None,
        "status": RunStatus.PENDING.value,
        # Set here, not left to the column's Python default: a statement with several
        # data-modifying CTEs does not carry SQLAlchemy's defaults to the driver.
        "attempt": 0,
    }


_INSERT_RUN, _INSERT_AUDITED_RUN = _insert_run_statements(keyed=False)
_INSERT_KEYED_RUN, _INSERT_KEYED_AUDITED_RUN = _insert_run_statements(keyed=True)


async def insert_runs(session: AsyncSession, requests: Sequence[RunRequest]) -> list[int]:
    """Insert pending runs in one statement (no commit); ids in request order."""
    if not requests:
        return []
    rows = await session.execute(
        insert(JobRun).returning(JobRun.id, sort_by_parameter_order=True),
        [row_values(request) for request in requests],
    )
    return [row.id for row in rows]


async def enqueue_runs(
    sessions: SessionFactory, redis: ArqRedis, requests: Sequence[RunRequest]
) -> list[int]:
    """Invariant 2: commit the pending rows, then queue one job per run."""
    async with sessions.begin() as session:
        run_ids = await insert_runs(session, requests)
    await transport.enqueue_dispatches(
        redis, [(run_id, request.queue) for run_id, request in zip(run_ids, requests, strict=True)]
    )
    return run_ids


async def enqueue_run(sessions: SessionFactory, redis: ArqRedis, request: RunRequest) -> int:
    """Create one pending run and queue it; returns the run id."""
    accepted = await accept_run(sessions, redis, request)
    if accepted.queued:
        logger.info(
            "run queued",
            extra={"run_id": accepted.run.id, "job_type": request.job_type, "queue": request.queue},
        )
    return accepted.run.id


async def enqueue_run_row(
    sessions: SessionFactory,
    redis: ArqRedis,
    request: RunRequest,
    *,
    audit: AuditEntry | None = None,
) -> JobRun:
    """``enqueue_run`` returning the new row; ``audit`` is written by the same statement."""
    return (await accept_run(sessions, redis, request, audit=audit)).run


@dataclass(frozen=True)
class Accepted:
    """A run committed as pending; ``queued`` is False when Redis could not take its job
    (the reconciler queues it once Redis answers again)."""

    run: JobRun
    queued: bool


async def accept_run(
    sessions: SessionFactory,
    redis: ArqRedis,
    request: RunRequest,
    *,
    audit: AuditEntry | None = None,
) -> Accepted:
    """Commit one pending run (``audit`` written by the same statement), then queue it.

    Once the row is committed the run is accepted whatever Redis does: a failed enqueue
    is logged and reported as ``queued=False``, never raised (invariant 2).
    """
    run = await _insert_run_row(sessions, request, audit)
    try:
        await transport.enqueue_dispatch(redis, run.id, request.queue)
    except (RedisError, OSError) as error:
        logger.warning(
            "run accepted but not queued (%s); the reconciler queues it when Redis is back",
            type(error).__name__,
            extra={"run_id": run.id, "queue": request.queue},
        )
        return Accepted(run, queued=False)
    return Accepted(run, queued=True)


async def _insert_run_row(
    sessions: SessionFactory, request: RunRequest, audit: AuditEntry | None
) -> JobRun:
    values = row_values(request)
    reservation = IDEMPOTENCY_RESERVATION.get()
    if reservation is not None:
        values.update(key_principal=reservation[0], key_key=reservation[1])
    if audit is None:
        statement = _INSERT_RUN if reservation is None else _INSERT_KEYED_RUN
        record = await statement.fetchrow(sessions, **values)
    else:
        # The statement fills in resource_id: the new run's id.
        columns = audit.columns()
        del columns["resource_id"]
        audit_values = {f"audit_{name}": value for name, value in columns.items()}
        statement = _INSERT_AUDITED_RUN if reservation is None else _INSERT_KEYED_AUDITED_RUN
        record = await statement.fetchrow(sessions, **values, **audit_values)
    assert record is not None  # an INSERT … RETURNING returns its row
    return JobRun(**dict(record))


def _refused(run_id: int, to: RunStatus, current: str | None) -> None:
    logger.warning(
        "refused transition of run %s to %s (current status %s)",
        run_id,
        to.value,
        current,
        extra={"run_id": run_id},
    )


async def _current_status(session: AsyncSession, run_id: int) -> str | None:
    status: str | None = await session.scalar(select(JobRun.status).where(JobRun.id == run_id))
    return status


def _one_of(values: Iterable[str]) -> list[BindParameter[str]]:
    """Fixed ``IN`` values as separate parameters: a plain ``in_(list)`` is re-expanded by
    SQLAlchemy at every execution, which costs more than the statement's round trip."""
    return [literal(value) for value in values]


# Hot-path statements are built once (they are plain expressions, not resources) so each
# execution skips statement construction.
_BLOCKING = aliased(JobRun, name="blocking")
_WAITING = aliased(JobRun, name="waiting")
_ACTIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
_TAKEN = (
    update(JobRun)
    .where(
        JobRun.id == bindparam("run_id"),
        JobRun.status == RunStatus.PENDING.value,
        JobRun.cancel_requested_at.is_(None),
        ~exists().where(
            _BLOCKING.id == JobRun.wait_for_run_id,
            _BLOCKING.status.in_(_one_of(_ACTIVE)),
        ),
    )
    .values(
        status=RunStatus.RUNNING.value,
        attempt=JobRun.attempt + 1,
        worker_id=bindparam("worker_id"),
        started_at=func.now(),
        heartbeat_at=func.now(),
        finished_at=None,
    )
    .returning(
        JobRun.attempt,
        JobRun.job_type,
        JobRun.parameters,
        JobRun.timeout_seconds,
        JobRun.credential_id,
        JobRun.targets,
        JobRun.template_id,
        JobRun.schedule_id,
        select(JobTemplate.max_concurrent_runs)
        .where(JobTemplate.id == JobRun.template_id)
        .scalar_subquery()
        .label("max_concurrent_runs"),
        JobRun.triggered_by,
        JobRun.executed_by,
        JobRun.private_to,
    )
    .cte("taken")
)
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
# One statement takes the run and, when it cannot, says why from the same snapshot: the
# run's status and that of the run it waits for. Two statements would leave a window in
# which the run waited for ends after the take was refused and before the second look.
_MARK_RUNNING = DriverStatement(
    select(
        *_TAKEN.c,
        _WAITING.status.label("current_status"),
        _WAITING.wait_for_run_id.label("waits_for"),
        _BLOCKING.status.label("blocking_status"),
    ).select_from(
        _ONE_ROW.outerjoin(_TAKEN, true())
        .outerjoin(_WAITING, _WAITING.id == bindparam("run_id"))
        .outerjoin(_BLOCKING, _BLOCKING.id == _WAITING.wait_for_run_id)
    )
)
# Refused although the snapshot says the run was free to start: a concurrent change to
# the run itself (taken, cancelled) decided; the next look sees it.
_MAX_LOOKS = 3


class RunMustWait(Exception):
    """The run cannot start yet: it queues behind another run of its schedule that has not
    ended (``blocking_run_id``), or — None — each try to take it raced a change to it."""

    def __init__(self, blocking_run_id: int | None) -> None:
        super().__init__(
            f"waiting for run {blocking_run_id}"
            if blocking_run_id is not None
            else "changed while being taken"
        )
        self.blocking_run_id = blocking_run_id


async def mark_running(sessions: SessionFactory, run_id: int, worker_id: str) -> RunStart | None:
    """Take a pending run (attempt + 1); None when it is not pending (duplicate delivery).

    Raises :class:`RunMustWait` while the run it waits for is still pending or running.
    A run that is pending is never answered None.
    """
    for _ in range(_MAX_LOOKS):
        row = await _MARK_RUNNING.fetchrow(sessions, run_id=run_id, worker_id=worker_id)
        assert row is not None  # the statement always returns its one row
        if row["attempt"] is not None:
            return _run_start(run_id, row)
        current = row["current_status"]
        if current != RunStatus.PENDING.value:
            _refused(run_id, RunStatus.RUNNING, current)
            return None
        if row["waits_for"] is not None and row["blocking_status"] in _ACTIVE:
            raise RunMustWait(row["waits_for"])
    # Still pending after every look (a change raced each one): deliver it again later.
    raise RunMustWait(None)


def _run_start(run_id: int, row: Mapping[str, Any]) -> RunStart:
    return RunStart(
        run_id=run_id,
        attempt=row["attempt"],
        job_type=row["job_type"],
        parameters=row["parameters"],
        timeout_seconds=row["timeout_seconds"],
        credential_id=row["credential_id"],
        targets=row["targets"],
        template_id=row["template_id"],
        schedule_id=row["schedule_id"],
        max_concurrent_runs=row["max_concurrent_runs"],
        triggered_by=row["triggered_by"],
        executed_by=row["executed_by"],
        private_to=row["private_to"],
    )


def _finish_statement(status: RunStatus) -> Select[tuple[int]]:
    """The guarded UPDATE ending a run as ``status`` (one per status: no per-call expansion),
    with the run's notification fact written by the same statement (invariant 13)."""
    ended = (
        update(JobRun)
        .where(
            JobRun.id == bindparam("p_run_id"),
            JobRun.attempt == bindparam("p_attempt"),
            JobRun.status.in_(_one_of(allowed.value for allowed in ALLOWED_FROM[status])),
        )
        .values(
            status=status.value,
            outcome=bindparam("p_outcome"),
            summary=bindparam("p_summary"),
            result=bindparam("p_result", type_=JobRun.result.type),
            error=bindparam("p_error"),
            reason=bindparam("p_reason"),
            finished_at=func.now(),
            progress_current=func.coalesce(
                bindparam("p_progress_current"), JobRun.progress_current
            ),
            progress_total=func.coalesce(bindparam("p_progress_total"), JobRun.progress_total),
            progress_message=func.coalesce(
                bindparam("p_progress_message"), JobRun.progress_message
            ),
        )
        .returning(JobRun.id, JobRun.status, JobRun.template_id, JobRun.schedule_id)
        .cte("ended")
    )
    return select(ended.c.id).add_cte(outbox.facts_from(ended).cte("facts"))


_FINISH = {status: _finish_statement(status) for status in TERMINAL_STATUSES}
_FINISH_ALONE = {
    status: DriverStatement(statement, json_params={"p_result"})
    for status, statement in _FINISH.items()
}


async def finish_run(
    sessions: SessionFactory, run_id: int, attempt: int, end: RunEnd, *, has_targets: bool = True
) -> bool:
    """Record the end of a running run; refused unless still running under ``attempt``.

    Open target rows end with the run; ``has_targets=False`` lets a run that never had
    targets finish in one statement.
    """
    progress = end.progress
    params = {
        "p_run_id": run_id,
        "p_attempt": attempt,
        "p_outcome": end.outcome,
        "p_summary": end.summary,
        "p_result": end.result,
        "p_error": end.error,
        "p_reason": end.reason,
        "p_progress_current": progress.current if progress else None,
        "p_progress_total": progress.total if progress else None,
        "p_progress_message": progress.message if progress else None,
    }
    lost = False

    async def record() -> bool:
        nonlocal lost
        try:
            return await _record_end(sessions, run_id, end.status, params, has_targets)
        except Exception as error:
            lost = lost or is_lost_connection(error)
            raise

    if await retry_lost(f"finish of run {run_id}", record):
        return True
    async with sessions() as session:
        current = await _current_status(session, run_id)
    if lost and current == end.status.value:
        # The try cut off by the lost connection had committed.
        return True
    _refused(run_id, end.status, current)
    return False


async def _record_end(
    sessions: SessionFactory,
    run_id: int,
    status: RunStatus,
    params: dict[str, Any],
    has_targets: bool,
) -> bool:
    if not has_targets:
        return await _FINISH_ALONE[status].fetchrow(sessions, **params) is not None
    async with sessions.begin() as session:
        conn = await session.connection()
        if (await conn.execute(_FINISH[status], params)).first() is None:
            return False
        await close_open_targets(session, run_id)
    return True


async def close_open_targets(session: AsyncSession, run_id: int) -> None:
    """Targets that never finished end with their run: nothing stays "running" forever."""
    await session.execute(
        update(JobRunTarget)
        .where(
            JobRunTarget.run_id == run_id,
            JobRunTarget.status.in_([TargetStatus.PENDING.value, TargetStatus.RUNNING.value]),
        )
        .values(status=TargetStatus.CANCELLED.value, finished_at=func.now())
    )


async def return_to_pending(
    sessions: SessionFactory, run_id: int, attempt: int, reason: str
) -> bool:
    """Give a running run back to the queue (worker shutdown, or lost with retries left)."""
    return await retry_lost(
        f"return of run {run_id} to the queue",
        lambda: _return_to_pending(sessions, run_id, attempt, reason),
    )


async def _return_to_pending(
    sessions: SessionFactory, run_id: int, attempt: int, reason: str
) -> bool:
    async with sessions.begin() as session:
        result = await session.execute(
            update(JobRun)
            .where(
                JobRun.id == run_id,
                JobRun.attempt == attempt,
                JobRun.status == RunStatus.RUNNING.value,
            )
            .values(
                status=RunStatus.PENDING.value,
                worker_id=None,
                heartbeat_at=None,
                reason=reason,
                queued_at=func.now(),
            )
            .returning(JobRun.id)
        )
        if result.first() is None:
            _refused(run_id, RunStatus.PENDING, await _current_status(session, run_id))
            return False
        await session.execute(
            update(JobRunTarget)
            .where(JobRunTarget.run_id == run_id)
            .values(status=TargetStatus.PENDING.value, started_at=None, finished_at=None)
        )
    return True


_UNTAKE = DriverStatement(
    update(JobRun)
    .where(
        JobRun.id == bindparam("run_id"),
        JobRun.attempt == bindparam("attempt"),
        JobRun.status == RunStatus.RUNNING.value,
    )
    .values(
        status=RunStatus.PENDING.value,
        attempt=JobRun.attempt - 1,
        worker_id=None,
        started_at=None,
        heartbeat_at=None,
        reason=bindparam("reason"),
    )
    .returning(JobRun.id)
)


async def untake(sessions: SessionFactory, run_id: int, attempt: int, reason: str) -> bool:
    """Give back a run taken but never started (its template's slots are all held): pending
    again under its previous attempt, as if never taken."""
    row = await retry_lost(
        f"return of run {run_id} to the queue",
        lambda: _UNTAKE.fetchrow(sessions, run_id=run_id, attempt=attempt, reason=reason),
    )
    return row is not None


@dataclass(frozen=True)
class Heartbeat:
    still_ours: bool
    cancel_requested: bool


async def record_heartbeat(sessions: SessionFactory, run_id: int, attempt: int) -> Heartbeat:
    """Refresh the run's heartbeat; tells the worker whether to stop."""
    async with single_statement(sessions) as conn:
        row = (
            await conn.execute(
                update(JobRun)
                .where(
                    JobRun.id == run_id,
                    JobRun.attempt == attempt,
                    JobRun.status == RunStatus.RUNNING.value,
                )
                .values(heartbeat_at=func.now())
                .returning(JobRun.cancel_requested_at)
            )
        ).one_or_none()
    if row is None:
        return Heartbeat(still_ours=False, cancel_requested=False)
    return Heartbeat(still_ours=True, cancel_requested=row.cancel_requested_at is not None)


async def cancel_requested(sessions: SessionFactory, run_id: int) -> bool:
    async def read() -> datetime | None:
        async with sessions() as session:
            requested: datetime | None = await session.scalar(
                select(JobRun.cancel_requested_at).where(JobRun.id == run_id)
            )
        return requested

    return await retry_lost(f"cancel check of run {run_id}", read) is not None


async def request_cancel(
    sessions: SessionFactory, redis: ArqRedis, run_id: int, cancelled_by: str | None
) -> RunStatus:
    """Cancel a run: a pending one at once, a running one by asking its worker.

    Returns the status the run has afterwards (``cancelled`` or ``running`` with a
    cancel request recorded). Finished runs are a conflict.
    """
    async with sessions.begin() as session:
        row = (
            await session.execute(
                select(JobRun.status, JobRun.queue, JobRun.attempt)
                .where(JobRun.id == run_id)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        if row.status == RunStatus.PENDING.value:
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(
                    status=RunStatus.CANCELLED.value,
                    cancel_requested_at=func.now(),
                    cancelled_by=cancelled_by,
                    finished_at=func.now(),
                    reason=(
                        "cancelled before it started"
                        if row.attempt == 0
                        else f"cancelled before attempt {row.attempt + 1}"
                    ),
                )
            )
            new_status = RunStatus.CANCELLED
        elif row.status == RunStatus.RUNNING.value:
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id, JobRun.cancel_requested_at.is_(None))
                .values(cancel_requested_at=func.now(), cancelled_by=cancelled_by)
            )
            new_status = RunStatus.RUNNING
        else:
            raise Conflict(f"run {run_id} is already {row.status}", details={"status": row.status})
    if new_status is RunStatus.CANCELLED:
        await transport.discard_job(redis, run_id, row.queue)
        await wake_waiters(sessions, redis, run_id)
    else:
        await transport.abort_running_job(redis, run_id)
    logger.info("run cancel requested", extra={"run_id": run_id, "by": cancelled_by})
    return new_status


async def wake_waiters(sessions: SessionFactory, redis: ArqRedis, run_id: int) -> int:
    """Make the runs queued behind ``run_id`` (overlap policy ``queue``) due now, so they
    start within a poll of it ending instead of at their next look; returns how many.

    Best effort: without Redis they look again after ``WAIT_RETRY_S`` as before.
    """
    async with sessions() as session:
        rows = await session.execute(
            select(JobRun.id, JobRun.queue).where(
                JobRun.wait_for_run_id == run_id, JobRun.status == RunStatus.PENDING.value
            )
        )
        waiters = [(row.id, row.queue) for row in rows]
    try:
        await transport.wake_jobs(redis, waiters)
    except REDIS_UNAVAILABLE:
        logger.info("runs waiting for run %s not woken: Redis unreachable", run_id)
        return 0
    return len(waiters)


async def replace_targets(
    sessions: SessionFactory, run_id: int, targets: Sequence[tuple[str, str]]
) -> None:
    """Record the resolved targets (key, name) on the run and one pending row per target.

    A later attempt resolves afresh, so rows of an earlier attempt are replaced.
    """
    await retry_lost(
        f"target write of run {run_id}", lambda: _replace_targets(sessions, run_id, targets)
    )


async def _replace_targets(
    sessions: SessionFactory, run_id: int, targets: Sequence[tuple[str, str]]
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(targets=[{"key": key, "name": name} for key, name in targets])
        )
        await session.execute(delete(JobRunTarget).where(JobRunTarget.run_id == run_id))
        if targets:
            await session.execute(
                insert(JobRunTarget),
                [
                    {"run_id": run_id, "position": i, "key": key, "name": name}
                    for i, (key, name) in enumerate(targets)
                ],
            )

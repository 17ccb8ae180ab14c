"""``/api/job-runs``: create ad-hoc runs, list, inspect, follow progress, cancel.

Every route sees only the runs the caller may see (``runs_visible_to``): another
principal's private run does not exist for it.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, func, select

from executors import get_executor
from service.access.audit import AuditEntry, record_audit, source_ip
from service.access.principals import Principal
from service.access.visibility import runs_visible_to
from service.api.auth import RunsExecutor, RunsReader
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep, WindowsDep
from service.api.idempotency import AcceptedRunOut, IdempotencyKeyHeader, create_once
from service.api.pagination import PageQuery, PageSizeQuery
from service.api.schemas import CancelOut, CreateRunIn
from service.db.engine import SessionFactory
from service.db.models import TERMINAL_STATUSES, JobRun, RunStatus, TriggeredBy
from service.db.paging import Page
from service.errors import Conflict, InvalidInput
from service.runs import commands, lifecycle, queries
from service.runs.authorization import authorize_request
from service.runs.queries import MAX_TEXT_FILTER, RunFilters, split_filter
from service.runs.requests import adhoc_request
from service.runs.views import AttemptOut, RunDetailOut, RunOut, RunProgressOut, TargetOut
from service.scheduling.windows import WindowCache, maintenance_gate
from service.settings import Settings

router = APIRouter(prefix="/api/job-runs", tags=["job-runs"])


@router.post("", status_code=202, response_model=AcceptedRunOut)
async def create_run(
    body: CreateRunIn,
    caller: RunsExecutor,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    windows: WindowsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AcceptedRunOut | JSONResponse:
    """Queue an ad-hoc run of a job type; 202 with the pending run once it is committed
    (``queued: false`` while Redis is unavailable), 409 inside a maintenance window unless
    ``override_maintenance``."""
    return await create_once(
        request,
        sessions,
        caller,
        idempotency_key,
        lambda: _create_run(body, caller, request, settings, sessions, redis, windows),
    )


async def _create_run(
    body: CreateRunIn,
    caller: Principal,
    request: Request,
    settings: Settings,
    sessions: SessionFactory,
    redis: ArqRedis,
    windows: WindowCache,
) -> AcceptedRunOut:
    run_request = adhoc_request(
        settings,
        get_executor,
        job_type=body.job_type,
        parameters=body.parameters,
        triggered_by=TriggeredBy.API,
        executed_by=caller.username,
        queue=body.queue,
        timeout_seconds=body.timeout_seconds,
        retry=body.retry,
    )
    run_request = await authorize_request(sessions, caller, run_request, get_executor)
    passed = maintenance_gate(await windows.current(), override=body.override_maintenance)(
        run_request
    )
    audit = AuditEntry(
        actor=caller.username,
        action="run",
        resource_type="job_run",
        source_ip=source_ip(request),
        details={"job_type": run_request.job_type, **passed},
    )
    accepted = await lifecycle.accept_run(sessions, redis, run_request, audit=audit)
    return AcceptedRunOut.accepted(accepted)


@router.get("", response_model=Page[RunOut])
async def list_runs(
    caller: RunsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
    status: str | None = None,
    outcome: str | None = None,
    job_type: str | None = None,
    triggered_by: str | None = None,
    template_id: str | None = None,
    schedule_id: str | None = None,
    q: Annotated[str | None, Query(max_length=MAX_TEXT_FILTER)] = None,
) -> Page[RunOut]:
    """Runs newest first; every filter takes comma-separated values, ``q`` searches the run
    name, who started it and its summary."""
    filters = RunFilters.parse(
        status=status,
        outcome=outcome,
        job_type=job_type,
        triggered_by=triggered_by,
        template_id=template_id,
        schedule_id=schedule_id,
        text=q,
    )
    return await queries.list_runs(session, caller, filters, page=page, page_size=page_size)


class StatsOut(BaseModel):
    window_hours: float
    total: int
    by_status: dict[str, int]
    by_outcome: dict[str, int]
    by_job_type: dict[str, dict[str, int]]


@router.get("/stats", response_model=StatsOut)
async def run_stats(
    caller: RunsReader,
    session: SessionDep,
    window_hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24,
) -> StatsOut:
    """Counts of runs queued within the window, per status, per outcome and per job type."""
    since = func.now() - timedelta(hours=window_hours)
    rows = (
        await session.execute(
            select(JobRun.job_type, JobRun.status, JobRun.outcome, func.count())
            .where(JobRun.queued_at >= since, runs_visible_to(caller))
            .group_by(JobRun.job_type, JobRun.status, JobRun.outcome)
        )
    ).all()
    by_status: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    by_job_type: dict[str, Counter[str]] = {}
    for job_type, status, outcome, count in rows:
        by_status[status] += count
        if outcome is not None:
            by_outcome[outcome] += count
        by_job_type.setdefault(job_type, Counter())[status] += count
    return StatsOut(
        window_hours=window_hours,
        total=sum(by_status.values()),
        by_status=dict(by_status),
        by_outcome=dict(by_outcome),
        by_job_type={name: dict(counts) for name, counts in by_job_type.items()},
    )


class DeletedOut(BaseModel):
    deleted: int


@router.delete("", response_model=DeletedOut)
async def delete_runs(
    caller: RunsExecutor,
    request: Request,
    session: SessionDep,
    older_than_days: Annotated[float, Query(gt=0, le=36_500)],
    status: str | None = None,
) -> DeletedOut:
    """Delete finished runs older than N days (optionally of some statuses); never active ones."""
    finished = {s.value for s in TERMINAL_STATUSES}
    statuses = split_filter(status, "status", {s.value for s in RunStatus}) or sorted(finished)
    active = sorted(set(statuses) - finished)
    if active:
        raise InvalidInput(
            f"pending and running runs are never deleted: {', '.join(active)}",
            details=[{"loc": ["query", "status"], "msg": "only finished statuses"}],
        )
    result = await session.execute(
        delete(JobRun)
        .where(
            JobRun.status.in_(statuses),
            JobRun.queued_at < func.now() - timedelta(days=older_than_days),
            runs_visible_to(caller),
        )
        .returning(JobRun.id)
    )
    deleted = len(result.all())
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="job_run",
        request=request,
        details={"older_than_days": older_than_days, "statuses": statuses, "deleted": deleted},
    )
    await session.commit()
    return DeletedOut(deleted=deleted)


@router.get("/{run_id}", response_model=RunDetailOut)
async def get_run(
    run_id: int,
    caller: RunsReader,
    session: SessionDep,
    targets_page: PageQuery = 1,
    targets_page_size: PageSizeQuery = 100,
) -> RunDetailOut:
    """One run with its per-target rows (paginated) and target counts by status."""
    run = await queries.get_run(session, caller, run_id)
    return await queries.run_detail(
        session, run, targets_page=targets_page, targets_page_size=targets_page_size
    )


@router.get("/{run_id}/attempts", response_model=list[AttemptOut])
async def list_run_attempts(
    run_id: int, caller: RunsReader, session: SessionDep
) -> list[AttemptOut]:
    """Every attempt of the run, oldest first: each one that ended in a retry with its
    result and a snapshot of its target rows, then the latest (its targets are the run's)."""
    run = await queries.get_run(session, caller, run_id)
    return await queries.run_attempts(session, run, with_targets=True)


@router.get("/{run_id}/targets", response_model=Page[TargetOut])
async def list_run_targets(
    run_id: int,
    caller: RunsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 100,
) -> Page[TargetOut]:
    await queries.get_run(session, caller, run_id)
    return await queries.target_page(session, run_id, page=page, page_size=page_size)


@router.get("/{run_id}/progress", response_model=RunProgressOut)
async def get_progress(run_id: int, caller: RunsReader, session: SessionDep) -> RunProgressOut:
    """The run's latest recorded progress, the same shape for every job type."""
    return RunProgressOut.of(await queries.get_run(session, caller, run_id))


@router.post("/{run_id}/cancel", status_code=202, response_model=CancelOut)
async def cancel_run(
    run_id: int, caller: RunsExecutor, request: Request, sessions: SessionsDep, redis: RedisDep
) -> CancelOut:
    """Cancel a pending run at once, or ask the worker of a running run to stop it."""
    status = await commands.cancel_run(
        sessions, redis, run_id, caller=caller, client_ip=source_ip(request)
    )
    return CancelOut(run_id=run_id, status=status)


@router.post("/{run_id}/retry", status_code=202, response_model=AcceptedRunOut)
async def retry_run(
    run_id: int,
    caller: RunsExecutor,
    request: Request,
    sessions: SessionsDep,
    redis: RedisDep,
    failed_targets_only: bool = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AcceptedRunOut | JSONResponse:
    """A new run with the same inputs, linked to the original (``retry_of_id``).

    With ``failed_targets_only`` it acts on the targets that did not succeed, and refuses
    (409) when there are none or the run had no targets.
    """

    async def retry() -> AcceptedRunOut:
        accepted = await commands.retry_run(
            sessions,
            redis,
            get_executor,
            run_id,
            caller=caller,
            failed_targets_only=failed_targets_only,
            client_ip=source_ip(request),
        )
        return AcceptedRunOut.accepted(accepted)

    return await create_once(request, sessions, caller, idempotency_key, retry)


@router.delete("/{run_id}", status_code=204)
async def delete_run(
    run_id: int, caller: RunsExecutor, request: Request, session: SessionDep
) -> Response:
    """Delete a finished run and its target rows; pending and running runs are a 409."""
    run = await queries.get_run(session, caller, run_id)
    if run.status not in {s.value for s in TERMINAL_STATUSES}:
        raise Conflict(f"run {run_id} is {run.status}; only finished runs can be deleted")
    await session.delete(run)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="job_run",
        resource_id=run_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)

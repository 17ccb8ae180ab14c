"""``/api/job-runs``: create ad-hoc runs, list, inspect, follow progress, cancel."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, func, select

from executors import get_executor
from service.access.audit import AuditEntry, record_audit, source_ip
from service.api.auth import RunsExecutor, RunsReader
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep
from service.api.pagination import PageQuery, PageSizeQuery, paginate
from service.api.schemas import (
    CancelOut,
    CreateRunIn,
    Page,
    RunDetailOut,
    RunOut,
    RunProgressOut,
    TargetOut,
    target_out,
)
from service.db.models import (
    TERMINAL_STATUSES,
    JobRun,
    JobRunTarget,
    Outcome,
    RunStatus,
    TargetStatus,
    TriggeredBy,
)
from service.errors import Conflict, InvalidInput, NotFound
from service.runs import lifecycle
from service.runs.reporting import Progress
from service.runs.requests import adhoc_request

router = APIRouter(prefix="/api/job-runs", tags=["job-runs"])


def _split(raw: str | None, field: str, allowed: set[str] | None = None) -> list[str]:
    """A comma-separated filter value; unknown values are a 422 naming the field."""
    if raw is None:
        return []
    values = [part.strip() for part in raw.split(",") if part.strip()]
    if allowed is not None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise InvalidInput(
                f"unknown {field}: {', '.join(unknown)}",
                details=[
                    {"loc": ["query", field], "msg": f"allowed: {', '.join(sorted(allowed))}"}
                ],
            )
    return values


def _int_list(raw: str | None, field: str) -> list[int]:
    try:
        return [int(value) for value in _split(raw, field)]
    except ValueError:
        raise InvalidInput(
            f"{field} must be comma-separated integers",
            details=[{"loc": ["query", field], "msg": "not an integer"}],
        ) from None


@router.post("", status_code=202, response_model=RunOut)
async def create_run(
    body: CreateRunIn,
    caller: RunsExecutor,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
) -> RunOut:
    """Queue an ad-hoc run of a job type; 202 with the pending run."""
    run_request = adhoc_request(
        settings,
        get_executor,
        job_type=body.job_type,
        parameters=body.parameters,
        triggered_by=TriggeredBy.API,
        executed_by=caller.username,
        queue=body.queue,
        timeout_seconds=body.timeout_seconds,
    )

    audit = AuditEntry(
        actor=caller.username,
        action="run",
        resource_type="job_run",
        source_ip=source_ip(request),
        details={"job_type": run_request.job_type},
    )
    run = await lifecycle.enqueue_run_row(sessions, redis, run_request, audit=audit)
    return RunOut.of(run)


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
) -> Page[RunOut]:
    """Runs newest first; every filter takes comma-separated values."""
    conditions: list[ColumnElement[bool]] = []
    if statuses := _split(status, "status", {s.value for s in RunStatus}):
        conditions.append(JobRun.status.in_(statuses))
    if outcomes := _split(outcome, "outcome", {o.value for o in Outcome}):
        conditions.append(JobRun.outcome.in_(outcomes))
    if job_types := _split(job_type, "job_type"):
        conditions.append(JobRun.job_type.in_(job_types))
    if triggers := _split(triggered_by, "triggered_by", {t.value for t in TriggeredBy}):
        conditions.append(JobRun.triggered_by.in_(triggers))
    if template_ids := _int_list(template_id, "template_id"):
        conditions.append(JobRun.template_id.in_(template_ids))
    if schedule_ids := _int_list(schedule_id, "schedule_id"):
        conditions.append(JobRun.schedule_id.in_(schedule_ids))
    return await paginate(
        session,
        JobRun,
        where=conditions,
        order_by=[JobRun.queued_at.desc(), JobRun.id.desc()],
        page=page,
        page_size=page_size,
        to_item=RunOut.of,
        as_rows=True,
    )


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
            .where(JobRun.queued_at >= since)
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
    statuses = _split(status, "status", {s.value for s in RunStatus}) or sorted(finished)
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


async def _get_run(session: SessionDep, run_id: int) -> JobRun:
    run = await session.get(JobRun, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


async def _target_page(
    session: SessionDep, run_id: int, page: int, page_size: int
) -> Page[TargetOut]:
    return await paginate(
        session,
        JobRunTarget,
        where=[JobRunTarget.run_id == run_id],
        order_by=[JobRunTarget.position],
        page=page,
        page_size=page_size,
        to_item=target_out,
    )


@router.get("/{run_id}", response_model=RunDetailOut)
async def get_run(
    run_id: int,
    caller: RunsReader,
    session: SessionDep,
    targets_page: PageQuery = 1,
    targets_page_size: PageSizeQuery = 100,
) -> RunDetailOut:
    """One run with its per-target rows (paginated) and target counts by status."""
    run = await _get_run(session, run_id)
    count_rows = await session.execute(
        select(JobRunTarget.status, func.count())
        .where(JobRunTarget.run_id == run_id)
        .group_by(JobRunTarget.status)
    )
    counts = {status: count for status, count in count_rows.all()}
    base: dict[str, Any] = RunOut.of(run).model_dump()
    return RunDetailOut(
        **base,
        target_counts=counts,
        target_rows=await _target_page(session, run_id, targets_page, targets_page_size),
    )


@router.get("/{run_id}/targets", response_model=Page[TargetOut])
async def list_run_targets(
    run_id: int,
    caller: RunsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 100,
) -> Page[TargetOut]:
    await _get_run(session, run_id)
    return await _target_page(session, run_id, page, page_size)


@router.get("/{run_id}/progress", response_model=RunProgressOut)
async def get_progress(run_id: int, caller: RunsReader, session: SessionDep) -> RunProgressOut:
    """The run's latest recorded progress, the same shape for every job type."""
    run = await _get_run(session, run_id)
    progress = Progress(run.progress_current or 0, run.progress_total, run.progress_message)
    return RunProgressOut(
        run_id=run.id,
        status=RunStatus(run.status),
        outcome=Outcome(run.outcome) if run.outcome else None,
        current=run.progress_current,
        total=run.progress_total,
        percent=progress.percent,
        message=run.progress_message,
    )


@router.post("/{run_id}/cancel", status_code=202, response_model=CancelOut)
async def cancel_run(
    run_id: int, caller: RunsExecutor, request: Request, sessions: SessionsDep, redis: RedisDep
) -> CancelOut:
    """Cancel a pending run at once, or ask the worker of a running run to stop it."""
    status = await lifecycle.request_cancel(sessions, redis, run_id, cancelled_by=caller.username)
    async with sessions.begin() as session:
        record_audit(
            session,
            actor=caller.username,
            action="cancel",
            resource_type="job_run",
            resource_id=run_id,
            request=request,
        )
    return CancelOut(run_id=run_id, status=status)


@router.post("/{run_id}/retry", status_code=202, response_model=RunOut)
async def retry_run(
    run_id: int,
    caller: RunsExecutor,
    request: Request,
    sessions: SessionsDep,
    redis: RedisDep,
    failed_targets_only: bool = False,
) -> RunOut:
    """A new run with the same inputs, linked to the original (``retry_of_id``).

    With ``failed_targets_only`` it acts on the targets that did not succeed, and refuses
    (409) when there are none or the run had no targets.
    """
    async with sessions() as session:
        original = await _get_run(session, run_id)
        if original.status not in {s.value for s in TERMINAL_STATUSES}:
            raise Conflict(f"run {run_id} is still {original.status}; cancel it or wait")
        targets = None
        if failed_targets_only:
            rows = (
                await session.execute(
                    select(JobRunTarget.key, JobRunTarget.name)
                    .where(
                        JobRunTarget.run_id == run_id,
                        JobRunTarget.status != TargetStatus.SUCCEEDED.value,
                    )
                    .order_by(JobRunTarget.position)
                )
            ).all()
            if not rows:
                raise Conflict(f"run {run_id} has no failed targets to retry")
            targets = [{"key": key, "name": name} for key, name in rows]
    retry = lifecycle.RunRequest(
        job_type=original.job_type,
        job_name=original.job_name,
        queue=original.queue,
        parameters=original.parameters,
        triggered_by=TriggeredBy.MANUAL,
        executed_by=caller.username,
        template_id=original.template_id,
        retry_of_id=original.id,
        credential_id=original.credential_id,
        timeout_seconds=original.timeout_seconds,
        max_attempts=original.max_attempts,
        targets=targets,
    )
    new_id = await lifecycle.enqueue_run(sessions, redis, retry)
    async with sessions.begin() as session:
        record_audit(
            session,
            actor=caller.username,
            action="retry",
            resource_type="job_run",
            resource_id=run_id,
            request=request,
            details={"new_run_id": new_id, "failed_targets_only": failed_targets_only},
        )
        run = await session.get_one(JobRun, new_id)
    return RunOut.of(run)


@router.delete("/{run_id}", status_code=204)
async def delete_run(
    run_id: int, caller: RunsExecutor, request: Request, session: SessionDep
) -> Response:
    """Delete a finished run and its target rows; pending and running runs are a 409."""
    run = await _get_run(session, run_id)
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

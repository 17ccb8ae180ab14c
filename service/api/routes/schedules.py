"""``/api/job-schedules``: schedules CRUD, run now, and previews of the next fires."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from executors import get_executor
from service.access.audit import record_audit
from service.access.principals import Principal
from service.api.auth import (
    RunsExecutor,
    SchedulesDeleter,
    SchedulesReader,
    SchedulesWriter,
)
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.api.patching import flush_or_conflict
from service.api.schedule_schemas import (
    FireOut,
    PreviewIn,
    PreviewOut,
    RunNowIn,
    ScheduleIn,
    ScheduleOut,
    ScheduleUpdate,
)
from service.db.models import JobRun, JobSchedule, JobTemplate, TriggeredBy
from service.db.paging import Page
from service.errors import Conflict, InvalidInput, NotFound
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.runs.requests import merge_parameters, template_request
from service.runs.views import RunOut
from service.scheduling.specs import ScheduleSpec, ScheduleType, first_fire, next_fire, preview
from service.scheduling.stored import (
    SPEC_FIELDS,
    spec_columns,
    spec_fields,
    spec_of,
    validated_spec,
)
from service.settings import Settings

router = APIRouter(prefix="/api/job-schedules", tags=["job-schedules"])

CountQuery = Annotated[int, Query(ge=1, le=100)]
_REQUIRED_FIELDS = (
    "job_identifier",
    "schedule_type",
    "timezone",
    "is_active",
    "is_global",
    "misfire_policy",
    "misfire_cap",
    "overlap_policy",
)


def _out(schedule: JobSchedule, template: JobTemplate) -> ScheduleOut:
    values = {
        name: getattr(schedule, name)
        for name in ScheduleOut.model_fields
        if hasattr(schedule, name)
    }
    local = None
    if schedule.next_run_at is not None:
        local = schedule.next_run_at.astimezone(ZoneInfo(schedule.timezone))
    values.update(
        template_name=template.name, template_job_type=template.job_type, next_run_local=local
    )
    return ScheduleOut.model_validate(values)


def _body_details(exc: InvalidInput) -> InvalidInput:
    """The same error located in the request body."""
    details = exc.details if isinstance(exc.details, list) else []
    located = [{**item, "loc": ["body", *item["loc"]]} for item in details]
    return InvalidInput(exc.message, details=located or exc.details)


def _validated_request(
    settings: Settings,
    template: JobTemplate,
    schedule: JobSchedule,
    *,
    overrides: dict[str, Any],
    triggered_by: TriggeredBy,
) -> RunRequest:
    try:
        return template_request(
            settings,
            get_executor,
            template,
            overrides=overrides,
            triggered_by=triggered_by,
            executed_by=schedule.owner,
            job_name=schedule.job_identifier,
            schedule_id=schedule.id,
            credential_id=schedule.credential_id,
        )
    except InvalidInput as exc:
        raise _body_details(exc) from None


async def _template(session: AsyncSession, template_id: int, caller: Principal) -> JobTemplate:
    """The template a new schedule runs; another user's private template does not exist."""
    template = await session.get(JobTemplate, template_id)
    if template is None or not caller.may_see(template.is_global, template.owner):
        raise InvalidInput(
            f"template {template_id} does not exist",
            details=[{"loc": ["body", "template_id"], "msg": "no such template"}],
        )
    return template


async def _schedule(
    session: AsyncSession, schedule_id: int, caller: Principal, *, for_update: bool = False
) -> tuple[JobSchedule, JobTemplate]:
    """The schedule and its template; another user's private schedule does not exist."""
    schedule = await session.get(JobSchedule, schedule_id, with_for_update=for_update)
    if schedule is None or not caller.may_see(schedule.is_global, schedule.owner):
        raise NotFound(f"schedule {schedule_id} does not exist")
    return schedule, await session.get_one(JobTemplate, schedule.template_id)


def _duplicate(identifier: str) -> Conflict:
    return Conflict(
        f"a schedule named {identifier!r} already exists",
        details=[{"loc": ["body", "job_identifier"], "msg": "already in use"}],
    )


async def _commit(session: AsyncSession, identifier: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        raise _duplicate(identifier) from None


@router.post("", status_code=201, response_model=ScheduleOut)
async def create_schedule(
    body: ScheduleIn,
    caller: SchedulesWriter,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    redis: RedisDep,
) -> ScheduleOut:
    """Create a schedule; a ``now`` schedule queues its one run at once (row, then job).

    The owner is the caller; only an admin may name another owner.
    """
    spec = validated_spec(body.model_dump(include=set(SPEC_FIELDS)))
    now = datetime.now(UTC)
    template = await _template(session, body.template_id, caller)
    schedule = JobSchedule(
        **body.model_dump(exclude={*SPEC_FIELDS, "owner"}),
        **spec_columns(spec),
        owner=body.owner if caller.is_admin and body.owner else caller.username,
        next_run_at=None,
    )
    run_request = _validated_request(
        settings, template, schedule, overrides=body.parameters, triggered_by=TriggeredBy.API
    )
    runs_now = body.is_active and spec.schedule_type == "now"
    if body.is_active and not runs_now:
        schedule.next_run_at = first_fire(spec, now)
    if runs_now:
        schedule.last_run_at = now
    session.add(schedule)
    run_ids: list[int] = []
    await flush_or_conflict(session, _duplicate(body.job_identifier))
    if runs_now:
        once = dataclasses.replace(
            run_request,
            triggered_by=TriggeredBy.SCHEDULE,
            schedule_id=schedule.id,
            scheduled_for=now,
        )
        run_ids = await lifecycle.insert_runs(session, [once])
    _audit(session, caller, "create", schedule, request)
    await session.commit()
    for run_id in run_ids:
        await transport.enqueue_dispatch(redis, run_id, run_request.queue)
    return _out(schedule, template)


@router.get("", response_model=Page[ScheduleOut])
async def list_schedules(
    caller: SchedulesReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
    is_active: bool | None = None,
    is_global: bool | None = None,
    template_id: int | None = None,
    schedule_type: ScheduleType | None = None,
    owner: str | None = None,
) -> Page[ScheduleOut]:
    """Schedules the caller may see (global ones and their own), newest first."""
    conditions: list[ColumnElement[bool]] = []
    if not caller.is_admin:
        conditions.append(JobSchedule.is_global | (JobSchedule.owner == caller.username))
    if is_active is not None:
        conditions.append(JobSchedule.is_active.is_(is_active))
    if is_global is not None:
        conditions.append(JobSchedule.is_global.is_(is_global))
    if template_id is not None:
        conditions.append(JobSchedule.template_id == template_id)
    if schedule_type is not None:
        conditions.append(JobSchedule.schedule_type == schedule_type)
    if owner is not None:
        conditions.append(JobSchedule.owner == owner)
    total = (
        await session.scalar(select(func.count()).select_from(JobSchedule).where(*conditions)) or 0
    )
    rows = await session.execute(
        select(JobSchedule, JobTemplate)
        .join(JobTemplate, JobTemplate.id == JobSchedule.template_id)
        .where(*conditions)
        .order_by(JobSchedule.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page[ScheduleOut](
        items=[_out(schedule, template) for schedule, template in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(
    schedule_id: int, caller: SchedulesReader, session: SessionDep
) -> ScheduleOut:
    return _out(*await _schedule(session, schedule_id, caller))


@router.put("/{schedule_id}", response_model=ScheduleOut)
async def update_schedule(
    schedule_id: int,
    body: ScheduleUpdate,
    caller: SchedulesWriter,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
) -> ScheduleOut:
    """Change the given fields; a new spec or a reactivation computes the next fire afresh."""
    changes = body.model_dump(exclude_unset=True)
    if "parameters" in changes and changes["parameters"] is None:
        changes["parameters"] = {}
    refused = [key for key in _REQUIRED_FIELDS if key in changes and changes[key] is None]
    if refused:
        raise InvalidInput(
            f"{', '.join(refused)} cannot be null",
            details=[{"loc": ["body", key], "msg": "must not be null"} for key in refused],
        )
    if "owner" in changes and not caller.is_admin:
        raise InvalidInput(
            "only an admin may change the owner",
            details=[{"loc": ["body", "owner"], "msg": "admins only"}],
        )
    schedule, template = await _schedule(session, schedule_id, caller, for_update=True)
    spec_changes = {key: value for key, value in changes.items() if key in SPEC_FIELDS}
    spec: ScheduleSpec | None = None
    if spec_changes:
        spec = validated_spec({**spec_fields(schedule), **spec_changes})
        changes.update(spec_columns(spec))
    reactivated = changes.get("is_active") is True and not schedule.is_active
    for key, value in changes.items():
        setattr(schedule, key, value)
    _validated_request(
        settings,
        template,
        schedule,
        overrides=schedule.parameters,
        triggered_by=TriggeredBy.API,
    )
    if not schedule.is_active:
        schedule.next_run_at = None
    elif spec is not None or reactivated:
        current = spec or spec_of(schedule)
        once = current.schedule_type == "now"
        schedule.next_run_at = None if once else first_fire(current, datetime.now(UTC))
    _audit(session, caller, "update", schedule, request, details={"fields": sorted(changes)})
    await _commit(session, schedule.job_identifier)
    await session.refresh(schedule)  # updated_at is set by the database
    return _out(schedule, template)


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: int, caller: SchedulesDeleter, request: Request, session: SessionDep
) -> Response:
    """Delete a schedule; its past runs stay, detached from it."""
    schedule, _ = await _schedule(session, schedule_id, caller, for_update=True)
    _audit(session, caller, "delete", schedule, request)
    await session.delete(schedule)
    await session.commit()
    return Response(status_code=204)


@router.post("/{schedule_id}/run", status_code=202, response_model=RunOut)
async def run_schedule_now(
    schedule_id: int,
    caller: RunsExecutor,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    body: RunNowIn | None = None,
) -> RunOut:
    """Queue a run of the schedule now (``triggered_by=manual``) with optional overrides."""
    async with sessions() as session:
        schedule, template = await _schedule(session, schedule_id, caller)
    overrides = merge_parameters(schedule.parameters, body.parameters if body else {})
    run_request = dataclasses.replace(
        _validated_request(
            settings, template, schedule, overrides=overrides, triggered_by=TriggeredBy.MANUAL
        ),
        executed_by=caller.username,
    )
    run_id = await lifecycle.enqueue_run(sessions, redis, run_request)
    async with sessions.begin() as session:
        _audit(session, caller, "run", schedule, request, details={"run_id": run_id})
        return RunOut.of(await session.get_one(JobRun, run_id))


@router.get("/{schedule_id}/preview", response_model=PreviewOut)
async def preview_schedule(
    schedule_id: int, caller: SchedulesReader, session: SessionDep, count: CountQuery = 10
) -> PreviewOut:
    """The next ``count`` fires of a schedule (from its stored next fire when it has one)."""
    schedule, _ = await _schedule(session, schedule_id, caller)
    spec = spec_of(schedule)
    fires: list[datetime] = []
    if schedule.next_run_at is not None:
        fire: datetime | None = schedule.next_run_at
        while fire is not None and len(fires) < count:
            fires.append(fire)
            fire = next_fire(spec, fire)
    else:
        fires = preview(spec, datetime.now(UTC), count)
    return _preview_out(spec, fires)


@router.post("/preview", response_model=PreviewOut)
async def preview_unsaved(body: PreviewIn, caller: SchedulesReader) -> PreviewOut:
    """The first ``count`` fires of a spec as if it were created now."""
    spec = validated_spec(body.model_dump(include=set(SPEC_FIELDS)))
    return _preview_out(spec, preview(spec, datetime.now(UTC), body.count))


def _audit(
    session: AsyncSession,
    caller: Principal,
    action: str,
    schedule: JobSchedule,
    request: Request,
    details: dict[str, Any] | None = None,
) -> None:
    record_audit(
        session,
        actor=caller.username,
        action=action,
        resource_type="job_schedule",
        resource_id=schedule.id,
        request=request,
        details={"job_identifier": schedule.job_identifier, **(details or {})},
    )


def _preview_out(spec: ScheduleSpec, fires: list[datetime]) -> PreviewOut:
    zone = spec.zone
    return PreviewOut(
        timezone=spec.timezone,
        fires=[FireOut(utc=fire, local=fire.astimezone(zone)) for fire in fires],
    )

"""``/api/job-schedules``: schedules CRUD, run now, and previews of the next fires."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service import runs
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep
from service.api.schemas import Page, RunOut
from service.db.models import JobRun, JobSchedule, JobTemplate, TriggeredBy
from service.errors import Conflict, InvalidInput, NotFound
from service.run_requests import merge_parameters, template_request
from service.runs import RunRequest
from service.schedules import (
    SPEC_FIELDS,
    MisfirePolicy,
    OverlapPolicy,
    spec_columns,
    spec_fields,
    spec_of,
    validated_spec,
)
from service.scheduling import ScheduleSpec, ScheduleType, first_fire, next_fire, preview
from service.settings import Settings

router = APIRouter(prefix="/api/job-schedules", tags=["job-schedules"])

PageQuery = Annotated[int, Query(ge=1, le=1_000_000)]
PageSizeQuery = Annotated[int, Query(ge=1, le=100)]
CountQuery = Annotated[int, Query(ge=1, le=100)]


class SpecIn(BaseModel):
    """When a schedule fires; checked as a whole by ScheduleSpec (errors name the field)."""

    model_config = ConfigDict(extra="forbid")

    schedule_type: ScheduleType
    interval_minutes: int | None = None
    time_of_day: str | None = None
    weekdays: list[int | str] | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None


class ScheduleIn(SpecIn):
    job_identifier: str = Field(min_length=1, max_length=255)
    template_id: int
    is_active: bool = True
    is_global: bool = True
    owner: str | None = Field(default=None, max_length=255)
    credential_id: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    misfire_policy: MisfirePolicy = "run_once"
    misfire_cap: int = Field(default=10, ge=1, le=1000)
    overlap_policy: OverlapPolicy = "skip"


class ScheduleUpdate(BaseModel):
    """Fields to change; the template of a schedule is fixed (create another schedule)."""

    model_config = ConfigDict(extra="forbid")

    job_identifier: str | None = Field(default=None, min_length=1, max_length=255)
    schedule_type: ScheduleType | None = None
    interval_minutes: int | None = None
    time_of_day: str | None = None
    weekdays: list[int | str] | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    is_active: bool | None = None
    is_global: bool | None = None
    owner: str | None = Field(default=None, max_length=255)
    credential_id: int | None = None
    parameters: dict[str, Any] | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_cap: int | None = Field(default=None, ge=1, le=1000)
    overlap_policy: OverlapPolicy | None = None


class PreviewIn(SpecIn):
    count: int = Field(default=10, ge=1, le=100)


class RunNowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_identifier: str
    template_id: int
    template_name: str
    template_job_type: str
    schedule_type: str
    interval_minutes: int | None
    time_of_day: str | None
    weekdays: list[int] | None
    day_of_month: int | None
    cron_expression: str | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    is_active: bool
    is_global: bool
    owner: str | None
    credential_id: int | None
    parameters: dict[str, Any]
    misfire_policy: str
    misfire_cap: int
    overlap_policy: str
    last_run_at: datetime | None
    next_run_at: datetime | None
    next_run_local: datetime | None
    created_at: datetime
    updated_at: datetime


class FireOut(BaseModel):
    utc: datetime
    local: datetime


class PreviewOut(BaseModel):
    timezone: str
    fires: list[FireOut]


def _out(schedule: JobSchedule, template: JobTemplate) -> ScheduleOut:
    values = {name: getattr(schedule, name) for name in ScheduleOut.model_fields if hasattr(schedule, name)}
    local = None
    if schedule.next_run_at is not None:
        local = schedule.next_run_at.astimezone(spec_of(schedule).zone)
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


async def _template(session: AsyncSession, template_id: int) -> JobTemplate:
    template = await session.get(JobTemplate, template_id)
    if template is None:
        raise InvalidInput(
            f"template {template_id} does not exist",
            details=[{"loc": ["body", "template_id"], "msg": "no such template"}],
        )
    return template


async def _schedule(
    session: AsyncSession, schedule_id: int, *, for_update: bool = False
) -> tuple[JobSchedule, JobTemplate]:
    schedule = await session.get(JobSchedule, schedule_id, with_for_update=for_update)
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    return schedule, await session.get_one(JobTemplate, schedule.template_id)


async def _commit(session: AsyncSession, identifier: str) -> None:
    try:
        await session.commit()
    except IntegrityError:
        raise Conflict(
            f"a schedule named {identifier!r} already exists",
            details=[{"loc": ["body", "job_identifier"], "msg": "already in use"}],
        ) from None


@router.post("", status_code=201, response_model=ScheduleOut)
async def create_schedule(
    body: ScheduleIn, settings: SettingsDep, sessions: SessionsDep, redis: RedisDep
) -> ScheduleOut:
    """Create a schedule; a ``now`` schedule queues its one run at once."""
    spec = validated_spec(body.model_dump(include=set(SPEC_FIELDS)))
    now = datetime.now(UTC)
    async with sessions() as session:
        template = await _template(session, body.template_id)
        schedule = JobSchedule(
            **body.model_dump(exclude=set(SPEC_FIELDS)),
            **spec_columns(spec),
            next_run_at=None,
        )
        request = _validated_request(
            settings, template, schedule, overrides=body.parameters, triggered_by=TriggeredBy.API
        )
        once = spec.schedule_type == "now"
        if body.is_active and not once:
            schedule.next_run_at = first_fire(spec, now)
        session.add(schedule)
        await _commit(session, body.job_identifier)
        if body.is_active and once:
            run_request = dataclasses.replace(
                request,
                triggered_by=TriggeredBy.SCHEDULE,
                schedule_id=schedule.id,
                scheduled_for=now,
            )
            await runs.enqueue_run(sessions, redis, run_request)
            schedule.last_run_at = now
            await session.commit()
        return _out(schedule, template)


@router.get("", response_model=Page[ScheduleOut])
async def list_schedules(
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
    is_active: bool | None = None,
    is_global: bool | None = None,
    template_id: int | None = None,
    schedule_type: ScheduleType | None = None,
    owner: str | None = None,
) -> Page[ScheduleOut]:
    """Schedules, newest first."""
    conditions: list[ColumnElement[bool]] = []
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
        items=[_out(schedule, template) for schedule, template in rows.tuples()],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: int, session: SessionDep) -> ScheduleOut:
    return _out(*await _schedule(session, schedule_id))


@router.put("/{schedule_id}", response_model=ScheduleOut)
async def update_schedule(
    schedule_id: int, body: ScheduleUpdate, settings: SettingsDep, session: SessionDep
) -> ScheduleOut:
    """Change the given fields; a new spec or a reactivation computes the next fire afresh."""
    changes = body.model_dump(exclude_unset=True)
    schedule, template = await _schedule(session, schedule_id, for_update=True)
    spec_changes = {key: value for key, value in changes.items() if key in SPEC_FIELDS}
    spec: ScheduleSpec | None = None
    if spec_changes:
        spec = validated_spec({**spec_fields(schedule), **spec_changes})
        changes.update(spec_columns(spec))
    reactivated = changes.get("is_active") is True and not schedule.is_active
    for key, value in changes.items():
        setattr(schedule, key, value)
    if "parameters" in changes and schedule.parameters is None:
        schedule.parameters = {}
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
    await _commit(session, schedule.job_identifier)
    return _out(schedule, template)


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: int, session: SessionDep) -> Response:
    """Delete a schedule; its past runs stay, detached from it."""
    schedule, _ = await _schedule(session, schedule_id, for_update=True)
    await session.delete(schedule)
    await session.commit()
    return Response(status_code=204)


@router.post("/{schedule_id}/run", status_code=202, response_model=RunOut)
async def run_schedule_now(
    schedule_id: int,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    body: RunNowIn | None = None,
) -> RunOut:
    """Queue a run of the schedule now (``triggered_by=manual``) with optional overrides."""
    async with sessions() as session:
        schedule, template = await _schedule(session, schedule_id)
    overrides = merge_parameters(schedule.parameters, body.parameters if body else {})
    request = _validated_request(
        settings, template, schedule, overrides=overrides, triggered_by=TriggeredBy.MANUAL
    )
    run_id = await runs.enqueue_run(sessions, redis, request)
    async with sessions() as session:
        return RunOut.of(await session.get_one(JobRun, run_id))


@router.get("/{schedule_id}/preview", response_model=PreviewOut)
async def preview_schedule(
    schedule_id: int, session: SessionDep, count: CountQuery = 10
) -> PreviewOut:
    """The next ``count`` fires of a schedule (from its stored next fire when it has one)."""
    schedule, _ = await _schedule(session, schedule_id)
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
async def preview_unsaved(body: PreviewIn) -> PreviewOut:
    """The first ``count`` fires of a spec as if it were created now."""
    spec = validated_spec(body.model_dump(include=set(SPEC_FIELDS)))
    return _preview_out(spec, preview(spec, datetime.now(UTC), body.count))


def _preview_out(spec: ScheduleSpec, fires: list[datetime]) -> PreviewOut:
    zone = spec.zone
    return PreviewOut(
        timezone=spec.timezone,
        fires=[FireOut(utc=fire, local=fire.astimezone(zone)) for fire in fires],
    )

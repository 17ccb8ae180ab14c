"""``/api/job-schedules``: schedules CRUD, run now, and previews of the next fires."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement

from executors import get_executor
from service.access.audit import source_ip
from service.api.auth import (
    RunsExecutor,
    SchedulesDeleter,
    SchedulesReader,
    SchedulesWriter,
)
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep, WindowsDep
from service.api.idempotency import AcceptedRunOut, IdempotencyKeyHeader, create_once
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.models import HealthState, JobSchedule
from service.db.paging import Page
from service.scheduling import editing
from service.scheduling.schemas import (
    PreviewIn,
    PreviewOut,
    RunNowIn,
    ScheduleIn,
    ScheduleOut,
    ScheduleUpdate,
)
from service.scheduling.specs import ScheduleType
from service.scheduling.stored import SPEC_FIELDS
from service.scheduling.windows import maintenance_gate

router = APIRouter(prefix="/api/job-schedules", tags=["job-schedules"])

CountQuery = Annotated[int, Query(ge=1, le=100)]


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
    return await editing.create_schedule(
        settings, get_executor, session, redis, body, caller=caller, client_ip=source_ip(request)
    )


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
    health: HealthState | None = None,
) -> Page[ScheduleOut]:
    """Schedules the caller may see (global ones and their own), newest first; ``health``
    filters by health state (``unhealthy``, ``paused``, ``ok``, ``unknown``)."""
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
    if health is not None:
        conditions.append(JobSchedule.health_state == health.value)
    return await editing.list_schedules(session, caller, conditions, page=page, page_size=page_size)


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(
    schedule_id: int, caller: SchedulesReader, session: SessionDep
) -> ScheduleOut:
    return editing.schedule_out(*await editing.get_schedule(session, schedule_id, caller))


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
    return await editing.update_schedule(
        settings,
        get_executor,
        session,
        schedule_id,
        body,
        caller=caller,
        client_ip=source_ip(request),
    )


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: int, caller: SchedulesDeleter, request: Request, session: SessionDep
) -> Response:
    """Delete a schedule; its past runs stay, detached from it."""
    await editing.delete_schedule(session, schedule_id, caller=caller, client_ip=source_ip(request))
    return Response(status_code=204)


@router.post("/{schedule_id}/run", status_code=202, response_model=AcceptedRunOut)
async def run_schedule_now(
    schedule_id: int,
    caller: RunsExecutor,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    windows: WindowsDep,
    body: RunNowIn | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AcceptedRunOut | JSONResponse:
    """Queue a run of the schedule now (``triggered_by=manual``) with optional overrides
    (409 inside a maintenance window unless ``override_maintenance``); 202 once the run is
    committed (``queued: false`` while Redis is unavailable)."""

    async def run() -> AcceptedRunOut:
        accepted = await editing.run_schedule_now(
            settings,
            get_executor,
            sessions,
            redis,
            schedule_id,
            overrides=body.parameters if body else {},
            caller=caller,
            client_ip=source_ip(request),
            gate=maintenance_gate(
                await windows.current(), override=body.override_maintenance if body else False
            ),
        )
        return AcceptedRunOut.accepted(accepted)

    return await create_once(request, sessions, caller, idempotency_key, run)


@router.get("/{schedule_id}/preview", response_model=PreviewOut)
async def preview_schedule(
    schedule_id: int,
    caller: SchedulesReader,
    session: SessionDep,
    windows: WindowsDep,
    count: CountQuery = 10,
) -> PreviewOut:
    """The next ``count`` fires of a schedule (from its stored next fire when it has one);
    ``maintenance`` names the windows a fire falls into (it will be skipped)."""
    schedule, template = await editing.get_schedule(session, schedule_id, caller)
    return editing.saved_fires(schedule, template.job_type, count, await windows.current())


@router.post("/preview", response_model=PreviewOut)
async def preview_unsaved(
    body: PreviewIn, caller: SchedulesReader, windows: WindowsDep
) -> PreviewOut:
    """The first ``count`` fires of a spec as if it were created now; ``maintenance`` names
    the windows covering every run that a fire falls into."""
    return editing.unsaved_fires(
        body.model_dump(include=set(SPEC_FIELDS)), body.count, await windows.current()
    )

"""Reading and changing schedules for people: list, create, update, run now, preview.

The API routers and the console both call these, so a schedule is checked, owned,
audited and previewed by the same rules whichever face changed it — including the use
rule: the caller and the schedule's owner must both be allowed to use everything its runs
would use.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import visible_to
from service.access.principals import Principal
from service.db.engine import SessionFactory
from service.db.models import HealthState, JobSchedule, JobTemplate, TriggeredBy
from service.db.paging import Page
from service.db.patching import flush_or_conflict
from service.errors import Conflict, InvalidInput, NotFound
from service.queue import transport
from service.runs import lifecycle
from service.runs.authorization import authorize_request, authorize_schedule
from service.runs.commands import ManualRunGate, audit_accepted
from service.runs.lifecycle import RunRequest
from service.runs.requests import JobTypes, merge_parameters, template_request
from service.scheduling.schemas import (
    FireOut,
    HealthOut,
    PreviewOut,
    ScheduleIn,
    ScheduleOut,
    ScheduleUpdate,
)
from service.scheduling.specs import ScheduleSpec, first_fire, next_fire, preview
from service.scheduling.stored import (
    SPEC_FIELDS,
    spec_columns,
    spec_fields,
    spec_of,
    validated_spec,
)
from service.scheduling.windows import Window, covering
from service.settings import Settings

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


def schedule_out(schedule: JobSchedule, template: JobTemplate) -> ScheduleOut:
    values = {
        name: getattr(schedule, name)
        for name in ScheduleOut.model_fields
        if hasattr(schedule, name)
    }
    local = None
    if schedule.next_run_at is not None:
        local = schedule.next_run_at.astimezone(ZoneInfo(schedule.timezone))
    values.update(
        template_name=template.name,
        template_job_type=template.job_type,
        next_run_local=local,
        health=HealthOut(
            state=schedule.health_state,
            last_success_at=schedule.last_success_at,
            consecutive_failures=schedule.consecutive_failures,
            reason=schedule.health_reason,
        ),
    )
    return ScheduleOut.model_validate(values)


def _body_details(exc: InvalidInput) -> InvalidInput:
    """The same error located in the request body."""
    details = exc.details if isinstance(exc.details, list) else []
    located = [{**item, "loc": ["body", *item["loc"]]} for item in details]
    return InvalidInput(exc.message, details=located or exc.details)


def _validated_request(
    settings: Settings,
    job_types: JobTypes,
    template: JobTemplate,
    schedule: JobSchedule,
    *,
    overrides: dict[str, Any],
    triggered_by: TriggeredBy,
) -> RunRequest:
    try:
        return template_request(
            settings,
            job_types,
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


async def get_schedule(
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


def _audit(
    session: AsyncSession,
    caller: Principal,
    action: str,
    schedule: JobSchedule,
    client_ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    record_audit(
        session,
        actor=caller.username,
        action=action,
        resource_type="job_schedule",
        resource_id=schedule.id,
        client_ip=client_ip,
        details={"job_identifier": schedule.job_identifier, **(details or {})},
    )


async def create_schedule(
    settings: Settings,
    job_types: JobTypes,
    session: AsyncSession,
    redis: ArqRedis,
    body: ScheduleIn,
    *,
    caller: Principal,
    client_ip: str | None,
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
    run_request = await authorize_schedule(
        session,
        caller,
        schedule,
        _validated_request(
            settings,
            job_types,
            template,
            schedule,
            overrides=body.parameters,
            triggered_by=TriggeredBy.API,
        ),
        job_types,
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
    _audit(session, caller, "create", schedule, client_ip)
    await session.commit()
    for run_id in run_ids:
        await transport.enqueue_dispatch(redis, run_id, run_request.queue)
    return schedule_out(schedule, template)


async def update_schedule(
    settings: Settings,
    job_types: JobTypes,
    session: AsyncSession,
    schedule_id: int,
    body: ScheduleUpdate,
    *,
    caller: Principal,
    client_ip: str | None,
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
    schedule, template = await get_schedule(session, schedule_id, caller, for_update=True)
    spec_changes = {key: value for key, value in changes.items() if key in SPEC_FIELDS}
    spec: ScheduleSpec | None = None
    if spec_changes:
        spec = validated_spec({**spec_fields(schedule), **spec_changes})
        changes.update(spec_columns(spec))
    reactivated = changes.get("is_active") is True and not schedule.is_active
    for key, value in changes.items():
        setattr(schedule, key, value)
    if reactivated:
        # Resuming a paused schedule starts its failure count and health afresh.
        schedule.consecutive_failures = 0
        schedule.health_state = HealthState.UNKNOWN.value
        schedule.health_reason = None
    await authorize_schedule(
        session,
        caller,
        schedule,
        _validated_request(
            settings,
            job_types,
            template,
            schedule,
            overrides=schedule.parameters,
            triggered_by=TriggeredBy.API,
        ),
        job_types,
    )
    if not schedule.is_active:
        schedule.next_run_at = None
    elif spec is not None or reactivated:
        current = spec or spec_of(schedule)
        once = current.schedule_type == "now"
        schedule.next_run_at = None if once else first_fire(current, datetime.now(UTC))
    _audit(session, caller, "update", schedule, client_ip, details={"fields": sorted(changes)})
    await _commit(session, schedule.job_identifier)
    await session.refresh(schedule)  # updated_at is set by the database
    return schedule_out(schedule, template)


async def delete_schedule(
    session: AsyncSession, schedule_id: int, *, caller: Principal, client_ip: str | None
) -> None:
    """Delete a schedule; its past runs stay, detached from it."""
    schedule, _ = await get_schedule(session, schedule_id, caller, for_update=True)
    _audit(session, caller, "delete", schedule, client_ip)
    await session.delete(schedule)
    await session.commit()


async def run_schedule_now(
    settings: Settings,
    job_types: JobTypes,
    sessions: SessionFactory,
    redis: ArqRedis,
    schedule_id: int,
    *,
    overrides: Mapping[str, Any],
    caller: Principal,
    client_ip: str | None,
    gate: ManualRunGate,
) -> lifecycle.Accepted:
    """Queue a run of the schedule now (``triggered_by=manual``) with optional overrides,
    once ``gate`` lets it through (maintenance windows)."""
    async with sessions() as session:
        schedule, template = await get_schedule(session, schedule_id, caller)
    run_request = dataclasses.replace(
        _validated_request(
            settings,
            job_types,
            template,
            schedule,
            overrides=merge_parameters(schedule.parameters, overrides),
            triggered_by=TriggeredBy.MANUAL,
        ),
        executed_by=caller.username,
    )
    run_request = await authorize_request(sessions, caller, run_request, job_types)
    passed = gate(run_request)
    accepted = await lifecycle.accept_run(sessions, redis, run_request)

    await audit_accepted(
        sessions,
        lambda session: _audit(
            session,
            caller,
            "run",
            schedule,
            client_ip,
            details={"run_id": accepted.run.id, **passed},
        ),
    )
    return accepted


async def list_schedules(
    session: AsyncSession,
    caller: Principal,
    conditions: list[ColumnElement[bool]],
    *,
    page: int,
    page_size: int,
) -> Page[ScheduleOut]:
    """Schedules the caller may see (global ones and their own) among ``conditions``,
    newest first."""
    conditions = [*conditions, visible_to(JobSchedule, caller)]
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
        items=[schedule_out(schedule, template) for schedule, template in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


def saved_fires(
    schedule: JobSchedule, job_type: str, count: int, windows: Sequence[Window]
) -> PreviewOut:
    """The next ``count`` fires of a schedule (from its stored next fire when it has one);
    ``maintenance`` names the windows a fire falls into (it will be skipped)."""
    spec = spec_of(schedule)
    fires: list[datetime] = []
    if schedule.next_run_at is not None:
        fire: datetime | None = schedule.next_run_at
        while fire is not None and len(fires) < count:
            fires.append(fire)
            fire = next_fire(spec, fire)
    else:
        fires = preview(spec, datetime.now(UTC), count)
    scope = {"template_id": schedule.template_id, "schedule_id": schedule.id, "job_type": job_type}
    return preview_out(spec, fires, windows, scope)


def unsaved_fires(
    fields: Mapping[str, Any], count: int, windows: Sequence[Window] = ()
) -> PreviewOut:
    """The first ``count`` fires of a spec as if it were created now; ``maintenance`` names
    the windows covering every run that a fire falls into."""
    spec = validated_spec(fields)
    scope: dict[str, Any] = {"template_id": None, "schedule_id": None, "job_type": ""}
    return preview_out(spec, preview(spec, datetime.now(UTC), count), windows, scope)


def preview_out(
    spec: ScheduleSpec,
    fires: list[datetime],
    windows: Sequence[Window],
    scope: dict[str, Any],
) -> PreviewOut:
    zone = spec.zone
    return PreviewOut(
        timezone=spec.timezone,
        fires=[
            FireOut(
                utc=fire,
                local=fire.astimezone(zone),
                maintenance=[window.name for window in covering(windows, fire, **scope)],
            )
            for fire in fires
        ],
    )

"""``/api/job-templates``: reusable job configurations, their types, and run-now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from executors import get_executor, job_types
from service.access.audit import record_audit, source_ip
from service.access.ownership import authorize, get_visible, require_owner, visible_to
from service.access.principals import Principal
from service.access.resources import resource_uses
from service.api.auth import (
    RunsExecutor,
    TemplatesDeleter,
    TemplatesReader,
    TemplatesWriter,
)
from service.api.deps import RedisDep, SessionDep, SessionsDep, SettingsDep, WindowsDep
from service.api.idempotency import AcceptedRunOut, IdempotencyKeyHeader, create_once
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.models import JobSchedule, JobTemplate
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict, refuse_nulls
from service.errors import Conflict, InvalidInput
from service.runs.commands import run_template_now
from service.runs.requests import JobType, queue_for, validated_config
from service.runs.retries import MAX_ATTEMPTS, RetryPolicy, resolve_policy
from service.scheduling.windows import maintenance_gate

router = APIRouter(prefix="/api/job-templates", tags=["job-templates"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
QueueName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
MAX_TIMEOUT_S = 7 * 24 * 3600


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    job_type: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=10_000)
    is_global: bool = False
    config: dict[str, Any] = Field(default_factory=dict)
    queue: QueueName | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)
    # Attempts of a run when its worker is lost: ``retry.max_attempts`` with the default
    # policy. Given with ``retry`` it must agree with it.
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    retry: RetryPolicy | None = None
    # Runs of this template at once over every worker; left out: no cap.
    max_concurrent_runs: int | None = Field(default=None, ge=1, le=10_000)


class TemplateUpdate(BaseModel):
    """Fields left out keep their value; ``config`` is replaced whole and re-validated."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    is_global: bool | None = None
    config: dict[str, Any] | None = None
    queue: QueueName | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S)
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    # Replaces the whole policy (fields left out of it take their defaults).
    retry: RetryPolicy | None = None
    max_concurrent_runs: int | None = Field(default=None, ge=1, le=10_000)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    job_type: str
    description: str | None
    is_global: bool
    owner: str | None
    config: dict[str, Any]
    queue: str | None
    timeout_seconds: int | None
    max_attempts: int
    retry: RetryPolicy
    max_concurrent_runs: int | None
    created_at: datetime
    updated_at: datetime


class JobTypeOut(BaseModel):
    job_type: str
    label: str
    description: str
    default_queue: str
    aliases: list[str]
    config_schema: dict[str, Any]


class RunTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    # Run even inside a maintenance window (audited).
    override_maintenance: bool = False


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a job template named {name!r} already exists in this scope")


async def _checked_config(
    session: AsyncSession, caller: Principal, executor: JobType, config: dict[str, Any]
) -> dict[str, Any]:
    """The config validated against the job type, naming only resources the caller may use."""
    model = validated_config(executor, config, field="config")
    await authorize(session, caller, resource_uses(model, ("config",)))
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


@router.get("/types", response_model=list[JobTypeOut])
async def list_job_types(caller: TemplatesReader, settings: SettingsDep) -> list[JobTypeOut]:
    """Every job type with its default queue and the JSON Schema of its configuration."""
    return [
        JobTypeOut(
            job_type=executor.job_type,
            label=executor.label,
            description=executor.description,
            default_queue=queue_for(settings, executor),
            aliases=list(executor.aliases),
            config_schema=executor.config.model_json_schema(),
        )
        for executor in job_types()
    ]


@router.get("", response_model=Page[TemplateOut])
async def list_templates(
    caller: TemplatesReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
    job_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[TemplateOut]:
    conditions = [visible_to(JobTemplate, caller)]
    if job_type:
        conditions.append(JobTemplate.job_type == job_type)
    return await paginate(
        session,
        JobTemplate,
        where=conditions,
        order_by=[JobTemplate.name, JobTemplate.id],
        page=page,
        page_size=page_size,
        to_item=TemplateOut.model_validate,
    )


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(
    body: TemplateIn, caller: TemplatesWriter, request: Request, session: SessionDep
) -> TemplateOut:
    """Save a template; its config is validated against the job type's Config now."""
    executor = get_executor(body.job_type)
    policy = resolve_policy(body.retry, body.max_attempts)
    template = JobTemplate(
        name=body.name,
        job_type=executor.job_type,
        description=body.description,
        is_global=body.is_global,
        owner=caller.username,
        config=await _checked_config(session, caller, executor, body.config),
        queue=body.queue,
        timeout_seconds=body.timeout_seconds,
        max_attempts=policy.max_attempts,
        retry_policy=policy.stored(),
        max_concurrent_runs=body.max_concurrent_runs,
    )
    session.add(template)
    await flush_or_conflict(session, _name_taken(body.name))
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="job_template",
        resource_id=template.id,
        request=request,
        details={"job_type": template.job_type},
    )
    await session.commit()
    await session.refresh(template)
    return TemplateOut.model_validate(template)


@router.get("/{template_id}", response_model=TemplateOut)
async def get_template(
    template_id: int, caller: TemplatesReader, session: SessionDep
) -> TemplateOut:
    return TemplateOut.model_validate(
        await get_visible(session, JobTemplate, template_id, caller, label="job template")
    )


@router.patch("/{template_id}", response_model=TemplateOut)
async def update_template(
    template_id: int,
    body: TemplateUpdate,
    caller: TemplatesWriter,
    request: Request,
    session: SessionDep,
) -> TemplateOut:
    template = await get_visible(session, JobTemplate, template_id, caller, label="job template")
    require_owner(caller, template, label="job template")
    changes = body.model_dump(exclude_unset=True)
    if "config" in changes:
        executor = get_executor(template.job_type)
        changes["config"] = await _checked_config(
            session, caller, executor, changes["config"] or {}
        )
    if changes.get("retry") is not None:
        policy = resolve_policy(body.retry, body.max_attempts)
        changes["max_attempts"] = policy.max_attempts
        changes["retry_policy"] = policy.stored()
    elif "retry" in changes:
        raise InvalidInput(
            "retry may not be null; send {} for the default policy",
            details=[{"loc": ["body", "retry"], "msg": "may not be null"}],
        )
    changes.pop("retry", None)
    refuse_nulls(JobTemplate, changes)
    for name, value in changes.items():
        setattr(template, name, value)
    await flush_or_conflict(session, _name_taken(template.name))
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="job_template",
        resource_id=template.id,
        request=request,
        details={"fields": sorted(changes)},
    )
    await session.commit()
    await session.refresh(template)
    return TemplateOut.model_validate(template)


@router.delete("/{template_id}", status_code=204)
async def delete_template(
    template_id: int,
    caller: TemplatesDeleter,
    request: Request,
    session: SessionDep,
    cascade: bool = False,
) -> Response:
    """Delete a template; 409 while schedules use it, unless ``cascade=true`` deletes them too.

    Its runs stay, keeping their name and type snapshots.
    """
    template = await get_visible(session, JobTemplate, template_id, caller, label="job template")
    require_owner(caller, template, label="job template")
    schedule_ids = list(
        await session.scalars(select(JobSchedule.id).where(JobSchedule.template_id == template_id))
    )
    if schedule_ids and not cascade:
        raise Conflict(
            f"job template {template_id} is used by {len(schedule_ids)} schedule(s); "
            "delete them first or pass cascade=true",
            details={"schedule_ids": schedule_ids},
        )
    if schedule_ids:
        await session.execute(delete(JobSchedule).where(JobSchedule.id.in_(schedule_ids)))
    await session.delete(template)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="job_template",
        resource_id=template_id,
        request=request,
        details={"deleted_schedule_ids": schedule_ids},
    )
    await session.commit()
    return Response(status_code=204)


@router.post("/{template_id}/run", status_code=202, response_model=AcceptedRunOut)
async def run_template(
    template_id: int,
    body: RunTemplateIn,
    caller: RunsExecutor,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    windows: WindowsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AcceptedRunOut | JSONResponse:
    """Run a template now, with parameter overrides validated against its Config (409
    inside a maintenance window unless ``override_maintenance``); 202 once the run is
    committed (``queued: false`` while Redis is unavailable)."""

    async def run() -> AcceptedRunOut:
        accepted = await run_template_now(
            settings,
            get_executor,
            sessions,
            redis,
            template_id=template_id,
            overrides=body.parameters,
            caller=caller,
            client_ip=source_ip(request),
            gate=maintenance_gate(await windows.current(), override=body.override_maintenance),
        )
        return AcceptedRunOut.accepted(accepted)

    return await create_once(request, sessions, caller, idempotency_key, run)

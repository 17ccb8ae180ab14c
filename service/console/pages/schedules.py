"""Schedules: the list with an active toggle, one schedule with its next 20 fires (zone
and UTC, DST days marked) and run history, and the create/edit form with a live preview."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from executors import get_executor
from service.access.audit import source_ip
from service.access.ownership import visible_to
from service.console.context import StoresDep, Viewer, ViewerDep, acting
from service.console.forms import field_errors
from service.console.routing import ConsoleRoute
from service.console.schedule_form import (
    OVERLAP_POLICIES,
    SCHEDULE_TYPES,
    SPEC_TEXT_FIELDS,
    WEEKDAYS,
    ScheduleForm,
    mark_dst_days,
    validation_errors,
)
from service.db.models import JobRun, JobTemplate
from service.errors import InvalidInput
from service.scheduling import editing
from service.scheduling.schemas import ScheduleIn, ScheduleUpdate
from service.scheduling.stored import MISFIRE_POLICIES
from service.scheduling.windows import maintenance_gate

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
NEXT_FIRES = 20
PREVIEW_FIRES = 10
HISTORY = 60
Writing = Annotated[Viewer, Depends(acting("jobs.schedules:write"))]
Executing = Annotated[Viewer, Depends(acting("jobs.runs:execute"))]


@router.get("/schedules")
async def schedules_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    viewer.principal.check("jobs.schedules:read")
    async with stores.sessions() as session:
        schedules = await editing.list_schedules(
            session, viewer.principal, [], page=page, page_size=PAGE_SIZE
        )
        ids = [schedule.id for schedule in schedules.items]
        latest = (
            await session.execute(
                select(JobRun.schedule_id, JobRun.id, JobRun.status, JobRun.outcome)
                .where(JobRun.schedule_id.in_(ids))
                .order_by(JobRun.schedule_id, JobRun.queued_at.desc())
                .distinct(JobRun.schedule_id)
            )
        ).all()
    return stores.renderer.page(
        request,
        "schedules.html",
        {
            "viewer": viewer,
            "nav": "schedules",
            "schedules": schedules,
            "last_runs": {row.schedule_id: row for row in latest},
        },
    )


async def _form_page(
    request: Request,
    viewer: Viewer,
    stores: StoresDep,
    form: ScheduleForm,
    *,
    schedule_id: int | None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
) -> Response:
    async with stores.sessions() as session:
        templates = (
            await session.execute(
                select(JobTemplate.id, JobTemplate.name)
                .where(visible_to(JobTemplate, viewer.principal))
                .order_by(JobTemplate.name)
            )
        ).all()
    preview, preview_error = _preview(form.spec_values(), PREVIEW_FIRES)
    return stores.renderer.page(
        request,
        "schedule_form.html",
        {
            "viewer": viewer,
            "nav": "schedules",
            "form": form,
            "schedule_id": schedule_id,
            "templates": templates,
            "errors": errors or {},
            "form_error": message,
            "schedule_types": SCHEDULE_TYPES,
            "misfire_policies": MISFIRE_POLICIES,
            "overlap_policies": OVERLAP_POLICIES,
            "weekday_names": WEEKDAYS,
            "preview": preview,
            "preview_error": preview_error,
        },
        status_code=422 if errors or message else 200,
    )


def _preview(spec: dict[str, Any], count: int) -> tuple[Any, str | None]:
    try:
        fires = editing.unsaved_fires(spec, count)
    except InvalidInput as exc:
        errors = field_errors(exc.details, prefix="body")
        return None, "; ".join(f"{name}: {msg}" for name, msg in errors.items()) or exc.message
    return mark_dst_days(fires.fires, fires.timezone), None


@router.get("/schedules/new")
async def new_schedule(
    request: Request, viewer: ViewerDep, stores: StoresDep, template_id: int | None = None
) -> Response:
    viewer.principal.check("jobs.schedules:write")
    return await _form_page(
        request, viewer, stores, ScheduleForm.blank(template_id), schedule_id=None
    )


@router.get("/schedules/preview")
async def preview_fragment(request: Request, viewer: ViewerDep, stores: StoresDep) -> Response:
    """The next fires of the spec being typed (the form's script asks on every change)."""
    viewer.principal.check("jobs.schedules:read")
    spec: dict[str, Any] = {
        name: value
        for name in SPEC_TEXT_FIELDS
        if (value := request.query_params.get(name, "").strip())
    }
    if weekdays := request.query_params.getlist("weekdays"):
        spec["weekdays"] = weekdays
    preview, preview_error = _preview(spec, PREVIEW_FIRES)
    return stores.renderer.page(
        request,
        "schedule_preview.html",
        {"viewer": viewer, "preview": preview, "preview_error": preview_error},
    )


async def _save(
    request: Request, viewer: Viewer, stores: StoresDep, schedule_id: int | None
) -> Response:
    """Create (no id) or update a schedule from the form; a refused form comes back as it
    was typed, each error next to its field (422)."""
    form = ScheduleForm.submitted(await request.form())
    values, errors = form.values()
    body: ScheduleIn | ScheduleUpdate | None = None
    try:
        if schedule_id is None:
            body = ScheduleIn.model_validate(values)
        else:
            values.pop("template_id", None)  # a schedule keeps its template
            body = ScheduleUpdate.model_validate(values)
    except ValidationError as exc:
        errors = {**validation_errors(exc), **errors}
    if errors or body is None:
        return await _form_page(
            request, viewer, stores, form, schedule_id=schedule_id, errors=errors
        )
    caller, client_ip = viewer.principal, source_ip(request)
    try:
        async with stores.sessions() as session:
            if isinstance(body, ScheduleIn):
                saved = await editing.create_schedule(
                    stores.settings,
                    get_executor,
                    session,
                    stores.redis,
                    body,
                    caller=caller,
                    client_ip=client_ip,
                )
            else:
                saved = await editing.update_schedule(
                    stores.settings,
                    get_executor,
                    session,
                    cast(int, schedule_id),
                    body,
                    caller=caller,
                    client_ip=client_ip,
                )
    except InvalidInput as exc:
        return await _form_page(
            request,
            viewer,
            stores,
            form,
            schedule_id=schedule_id,
            errors=field_errors(exc.details, prefix="body"),
            message=exc.message,
        )
    return RedirectResponse(f"/schedules/{saved.id}", status_code=303)


@router.post("/schedules")
async def create(request: Request, viewer: Writing, stores: StoresDep) -> Response:
    return await _save(request, viewer, stores, None)


@router.get("/schedules/{schedule_id}")
async def schedule_page(
    request: Request, schedule_id: int, viewer: ViewerDep, stores: StoresDep
) -> Response:
    viewer.principal.check("jobs.schedules:read")
    async with stores.sessions() as session:
        schedule, template = await editing.get_schedule(session, schedule_id, viewer.principal)
        history = (
            await session.execute(
                select(JobRun.id, JobRun.status, JobRun.outcome, JobRun.queued_at)
                .where(JobRun.schedule_id == schedule_id)
                .order_by(JobRun.queued_at.desc())
                .limit(HISTORY)
            )
        ).all()
    fires = editing.saved_fires(
        schedule, template.job_type, NEXT_FIRES, await stores.windows.current()
    )
    return stores.renderer.page(
        request,
        "schedule.html",
        {
            "viewer": viewer,
            "nav": "schedules",
            "schedule": editing.schedule_out(schedule, template),
            "fires": mark_dst_days(fires.fires, fires.timezone),
            "history": list(reversed(history)),
        },
    )


@router.get("/schedules/{schedule_id}/edit")
async def edit_schedule(
    request: Request, schedule_id: int, viewer: ViewerDep, stores: StoresDep
) -> Response:
    viewer.principal.check("jobs.schedules:write")
    async with stores.sessions() as session:
        schedule, template = await editing.get_schedule(session, schedule_id, viewer.principal)
    form = ScheduleForm.of(editing.schedule_out(schedule, template))
    return await _form_page(request, viewer, stores, form, schedule_id=schedule_id)


@router.post("/schedules/{schedule_id}")
async def update(
    request: Request, schedule_id: int, viewer: Writing, stores: StoresDep
) -> Response:
    return await _save(request, viewer, stores, schedule_id)


@router.post("/schedules/{schedule_id}/active")
async def set_active(
    request: Request, schedule_id: int, viewer: Writing, stores: StoresDep
) -> RedirectResponse:
    form = await request.form()
    async with stores.sessions() as session:
        await editing.update_schedule(
            stores.settings,
            get_executor,
            session,
            schedule_id,
            ScheduleUpdate(is_active=form.get("is_active") == "true"),
            caller=viewer.principal,
            client_ip=source_ip(request),
        )
    back = form.get("back")
    target = back if back in ("/schedules", f"/schedules/{schedule_id}") else "/schedules"
    return RedirectResponse(str(target), status_code=303)


@router.post("/schedules/{schedule_id}/run")
async def run_now(
    request: Request, schedule_id: int, viewer: Executing, stores: StoresDep
) -> RedirectResponse:
    run = (
        await editing.run_schedule_now(
            stores.settings,
            get_executor,
            stores.sessions,
            stores.redis,
            schedule_id,
            overrides={},
            caller=viewer.principal,
            client_ip=source_ip(request),
            gate=maintenance_gate(await stores.windows.current(), override=False),
        )
    ).run
    return RedirectResponse(f"/runs/{run.id}", status_code=303)

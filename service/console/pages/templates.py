"""Job templates: the list, one template with its recent runs, and Run now from a form
generated from the job type's JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from executors import get_executor
from service.access.audit import source_ip
from service.access.ownership import get_visible, visible_to
from service.console.context import StoresDep, Viewer, ViewerDep, acting
from service.console.forms import (
    field_errors,
    parse_parameters,
    schema_fields,
    submitted_texts,
)
from service.console.routing import ConsoleRoute
from service.db.models import JobTemplate
from service.db.paging import paginate
from service.errors import InvalidInput
from service.runs import queries
from service.runs.commands import run_template_now
from service.runs.queries import RunFilters
from service.runs.retries import RetryPolicy
from service.scheduling.windows import maintenance_gate

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
RECENT_RUNS = 10
Executing = Annotated[Viewer, Depends(acting("jobs.runs:execute"))]


@router.get("/templates")
async def templates_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    viewer.principal.check("jobs.templates:read")
    async with stores.sessions() as session:
        templates = await paginate(
            session,
            JobTemplate,
            where=[visible_to(JobTemplate, viewer.principal)],
            order_by=[JobTemplate.name, JobTemplate.id],
            page=page,
            page_size=PAGE_SIZE,
            to_item=lambda row: row,
        )
    return stores.renderer.page(
        request, "templates.html", {"viewer": viewer, "nav": "templates", "templates": templates}
    )


async def _template_page(
    request: Request,
    viewer: Viewer,
    stores: StoresDep,
    template_id: int,
    *,
    texts: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
) -> Response:
    viewer.principal.check("jobs.templates:read")
    async with stores.sessions() as session:
        template = await get_visible(
            session, JobTemplate, template_id, viewer.principal, label="job template"
        )
        runs = await queries.list_runs(
            session,
            viewer.principal,
            RunFilters(template_ids=(template_id,)),
            page=1,
            page_size=RECENT_RUNS,
        )
    schema = get_executor(template.job_type).config.model_json_schema()
    context: dict[str, Any] = {
        "viewer": viewer,
        "nav": "templates",
        "template": template,
        "retry": RetryPolicy.of(template.max_attempts, template.retry_policy),
        "runs": runs,
        "fields": schema_fields(schema, template.config, errors, texts=texts),
        "form_error": message,
    }
    return stores.renderer.page(
        request, "template.html", context, status_code=422 if errors or message else 200
    )


@router.get("/templates/{template_id}")
async def template_page(
    request: Request, template_id: int, viewer: ViewerDep, stores: StoresDep
) -> Response:
    return await _template_page(request, viewer, stores, template_id)


@router.post("/templates/{template_id}/run")
async def run_now(
    request: Request, template_id: int, viewer: Executing, stores: StoresDep
) -> Response:
    """Queue a run with the form's values; a field the Config refuses is shown with its
    error next to it (422) and nothing is queued."""
    async with stores.sessions() as session:
        template = await get_visible(
            session, JobTemplate, template_id, viewer.principal, label="job template"
        )
    schema = get_executor(template.job_type).config.model_json_schema()
    texts = submitted_texts(schema, await request.form())
    parameters, errors = parse_parameters(schema, texts)
    if errors:
        return await _template_page(
            request, viewer, stores, template_id, texts=texts, errors=errors
        )
    try:
        accepted = await run_template_now(
            stores.settings,
            get_executor,
            stores.sessions,
            stores.redis,
            template_id=template_id,
            overrides=parameters,
            caller=viewer.principal,
            client_ip=source_ip(request),
            gate=maintenance_gate(await stores.windows.current(), override=False),
        )
    except InvalidInput as exc:
        return await _template_page(
            request,
            viewer,
            stores,
            template_id,
            texts=texts,
            errors=field_errors(exc.details),
            message=exc.message,
        )
    return RedirectResponse(f"/runs/{accepted.run.id}", status_code=303)

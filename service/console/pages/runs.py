"""Runs: the filtered list with live rows, one run with its live progress, and actions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from executors import get_executor, job_types
from service.access.audit import source_ip
from service.access.ownership import visible_to
from service.console.context import StoresDep, Viewer, ViewerDep, acting
from service.console.routing import ConsoleRoute
from service.db.models import (
    TERMINAL_STATUSES,
    JobSchedule,
    JobTemplate,
    Outcome,
    RunStatus,
    TriggeredBy,
)
from service.runs import commands, queries
from service.runs.events import HEARTBEAT, STREAM_ID_PATTERN, logged_lines
from service.runs.queries import MAX_TEXT_FILTER, RunFilters
from service.runs.views import RunOut
from service.runs.watch import EventStreamResponse, run_event_response

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
TARGETS_PAGE_SIZE = 100
# Choices in the template and schedule filters; beyond this many, filter by id in the URL.
MAX_CHOICES = 500
# How often the list's live stream reads the rows of its unfinished runs.
LIVE_INTERVAL_S = 1.0
LIVE_HEARTBEAT_S = 15.0
MAX_LIVE_RUNS = 100
_FINISHED = frozenset(status.value for status in TERMINAL_STATUSES)
Executing = Annotated[Viewer, Depends(acting("jobs.runs:execute"))]


@router.get("/runs")
async def runs_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    status: str | None = None,
    outcome: str | None = None,
    job_type: str | None = None,
    triggered_by: str | None = None,
    template_id: str | None = None,
    schedule_id: str | None = None,
    q: Annotated[str | None, Query(max_length=MAX_TEXT_FILTER)] = None,
) -> Response:
    raw = {
        "status": status or "",
        "outcome": outcome or "",
        "job_type": job_type or "",
        "triggered_by": triggered_by or "",
        "template_id": template_id or "",
        "schedule_id": schedule_id or "",
        "q": q or "",
    }
    filters = RunFilters.parse(
        **{key: value or None for key, value in raw.items() if key != "q"}, text=q
    )
    async with stores.sessions() as session:
        runs = await queries.list_runs(
            session, viewer.principal, filters, page=page, page_size=PAGE_SIZE
        )
        templates = (
            await session.execute(
                select(JobTemplate.id, JobTemplate.name)
                .where(visible_to(JobTemplate, viewer.principal))
                .order_by(JobTemplate.name)
                .limit(MAX_CHOICES)
            )
        ).all()
        schedules = (
            await session.execute(
                select(JobSchedule.id, JobSchedule.job_identifier)
                .where(visible_to(JobSchedule, viewer.principal))
                .order_by(JobSchedule.job_identifier)
                .limit(MAX_CHOICES)
            )
        ).all()
    query = urlencode({key: value for key, value in raw.items() if value})
    return stores.renderer.page(
        request,
        "runs.html",
        {
            "viewer": viewer,
            "nav": "runs",
            "runs": runs,
            "filters": raw,
            "query": query,
            "statuses": [s.value for s in RunStatus],
            "outcomes": [o.value for o in Outcome],
            "triggers": [t.value for t in TriggeredBy],
            "job_types": sorted(executor.job_type for executor in job_types()),
            "templates": templates,
            "schedules": schedules,
            "live_ids": [run.id for run in runs.items if run.status.value not in _FINISHED],
        },
    )


def _live_row(run: RunOut) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "outcome": run.outcome.value if run.outcome else None,
        "percent": run.progress.percent,
        "message": run.progress.message,
        "duration": run.duration_seconds,
    }


@router.get("/runs/live")
async def live_rows(
    viewer: ViewerDep,
    stores: StoresDep,
    ids: Annotated[str, Query(max_length=2000, pattern=r"^[0-9]{1,18}(,[0-9]{1,18})*$")],
) -> EventStreamResponse:
    """The list's unfinished rows as they change (from the run rows), until all are done."""
    run_ids = [int(value) for value in ids.split(",")][:MAX_LIVE_RUNS]

    async def events() -> AsyncGenerator[bytes, None]:
        sent: dict[int, dict[str, Any]] = {}
        quiet = 0.0
        while True:
            async with stores.sessions() as session:
                runs = await queries.runs_by_id(session, viewer.principal, run_ids)
            changed = [row for row in map(_live_row, runs) if sent.get(row["id"]) != row]
            for row in changed:
                sent[row["id"]] = row
            if changed:
                quiet = 0.0
                yield f"event: runs\ndata: {json.dumps(changed)}\n\n".encode()
            elif quiet >= LIVE_HEARTBEAT_S:
                quiet = 0.0
                yield HEARTBEAT
            if all(row["status"] in _FINISHED for row in sent.values()) and len(sent) == len(runs):
                return
            await asyncio.sleep(LIVE_INTERVAL_S)
            quiet += LIVE_INTERVAL_S

    return EventStreamResponse(events())


async def _run_context(
    stores: StoresDep, viewer: Viewer, run_id: int, targets_page: int
) -> dict[str, Any]:
    async with stores.sessions() as session:
        run = await queries.get_run(session, viewer.principal, run_id)
        detail = await queries.run_detail(
            session, run, targets_page=targets_page, targets_page_size=TARGETS_PAGE_SIZE
        )
        failed = await queries.unfinished_targets(session, run_id) if detail.target_counts else []
        template_name = None
        if run.template_id is not None:
            template_name = await session.scalar(
                select(JobTemplate.name).where(JobTemplate.id == run.template_id)
            )
        schedule_name = None
        if run.schedule_id is not None:
            schedule_name = await session.scalar(
                select(JobSchedule.job_identifier).where(JobSchedule.id == run.schedule_id)
            )
    return {
        "viewer": viewer,
        "nav": "runs",
        "run": detail,
        "finished": detail.status.value in _FINISHED,
        "has_failed_targets": bool(failed),
        "template_name": template_name,
        "schedule_name": schedule_name,
        "logs": await logged_lines(stores.redis, run_id),
        "targets_page": targets_page,
    }


TargetsPage = Annotated[int, Query(ge=1, le=1_000_000)]


@router.get("/runs/{run_id}")
async def run_page(
    request: Request,
    run_id: int,
    viewer: ViewerDep,
    stores: StoresDep,
    targets_page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    panels: bool = False,
) -> Response:
    """A run; with ``panels`` only the parts that change when it ends, which the page's
    script swaps in when the final state arrives."""
    context = await _run_context(stores, viewer, run_id, targets_page)
    return stores.renderer.page(request, "run_panels.html" if panels else "run.html", context)


@router.get("/runs/{run_id}/events")
async def run_events(
    run_id: int,
    viewer: ViewerDep,
    stores: StoresDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=STREAM_ID_PATTERN)
    ] = None,
) -> EventStreamResponse:
    async with stores.sessions() as session:
        run = await queries.get_run(session, viewer.principal, run_id)
    return await run_event_response(
        stores.settings,
        stores.sessions,
        stores.redis,
        run,
        caller=viewer.principal,
        last_event_id=last_event_id,
    )


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request, run_id: int, viewer: Executing, stores: StoresDep
) -> RedirectResponse:
    await commands.cancel_run(
        stores.sessions,
        stores.redis,
        run_id,
        caller=viewer.principal,
        client_ip=source_ip(request),
    )
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/retry")
async def retry(
    request: Request,
    run_id: int,
    viewer: Executing,
    stores: StoresDep,
    failed_targets_only: Annotated[bool, Form()] = False,
) -> RedirectResponse:
    run = (
        await commands.retry_run(
            stores.sessions,
            stores.redis,
            get_executor,
            run_id,
            caller=viewer.principal,
            failed_targets_only=failed_targets_only,
            client_ip=source_ip(request),
        )
    ).run
    return RedirectResponse(f"/runs/{run.id}", status_code=303)

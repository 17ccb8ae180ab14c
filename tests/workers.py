"""Running arq workers in process for tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import select

from executors import get_executor
from executors.services import Services
from service.db.engine import SessionFactory
from service.db.models import TERMINAL_STATUSES, JobRun, TriggeredBy
from service.runs import lifecycle
from service.runs.requests import adhoc_request
from service.settings import Settings
from service.worker.app import build_worker

# Seconds a stopping test worker waits for its jobs in flight before cancelling them.
STOP_GRACE_S = 1.0


async def enqueue_adhoc(
    services: Services,
    settings: Settings,
    job_type: str,
    parameters: Mapping[str, Any],
    *,
    executed_by: str = "admin",
    credential_id: int | None = None,
) -> int:
    """Queue an ad-hoc run directly, without the API's checks (as a run whose resources
    changed after it was requested would reach a worker); returns its id."""
    request = adhoc_request(
        settings,
        get_executor,
        job_type=job_type,
        parameters=parameters,
        triggered_by=TriggeredBy.API,
        executed_by=executed_by,
    )
    if credential_id is not None:
        request = dataclasses.replace(request, credential_id=credential_id)
    return await lifecycle.enqueue_run(services.sessions, services.redis, request)


async def drain(settings: Settings, queue: str | None = None) -> None:
    """Run a burst worker until the queue is empty and its runs have ended."""
    worker = build_worker(
        settings, queue or settings.queues.default, burst=True, handle_signals=False
    )
    try:
        await worker.main()
    finally:
        await worker.close()


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, queue: str | None = None) -> AsyncIterator[None]:
    """A long-running worker for the duration of the block."""
    worker = build_worker(settings, queue or settings.queues.default, handle_signals=False)
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        # A run may be recorded as finished while arq still settles its job; cancelling it
        # then makes close() raise. Stop taking jobs and give those in flight a moment.
        worker.allow_pick_jobs = False
        in_flight = [job for job in worker.tasks.values() if not job.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=STOP_GRACE_S)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


async def wait_for_run(
    sessions: SessionFactory,
    run_id: int,
    *,
    statuses: frozenset[str] = frozenset(TERMINAL_STATUSES),
    min_progress: int | None = None,
    within: float = 20,
) -> JobRun:
    """Poll until the run reaches one of ``statuses`` (or at least ``min_progress``)."""
    async with asyncio.timeout(within):
        while True:
            async with sessions() as session:
                run = (await session.scalars(select(JobRun).where(JobRun.id == run_id))).one()
            if min_progress is not None:
                if (run.progress_current or 0) >= min_progress:
                    return run
            elif run.status in statuses:
                return run
            await asyncio.sleep(0.02)

"""``opsjobs run --direct``: queue an ad-hoc run through PostgreSQL and Redis, without the
API, and follow it to its end in the terminal.

For operators on the server (it reads settings.toml): the run is queued as the OS user,
authorised as the API would authorise that user (their role is the highest of their live
tokens; viewer without one, so another user's private resource is refused), and recorded
in the audit log with ``via: direct``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from executors import get_executor
from service.access.audit import AuditEntry
from service.access.principals import principal_named
from service.client.watch import exit_code
from service.db.engine import create_engine, create_session_factory
from service.db.models import TERMINAL_STATUSES, JobRun, TriggeredBy
from service.keyspace import open_redis
from service.runs import lifecycle
from service.runs.authorization import authorize_request
from service.runs.reporting import Progress
from service.runs.requests import adhoc_request
from service.settings import Settings

POLL_INTERVAL_S = 0.25
BAR_WIDTH = 30
#: How the audit log marks a run queued without the API.
VIA_DIRECT = "direct"


async def queue_adhoc_run(
    settings: Settings,
    job_type: str,
    parameters: Mapping[str, Any],
    queue: str | None,
    *,
    os_user: str,
    timeout_seconds: int | None = None,
) -> tuple[int, str]:
    """Validate, authorise and queue a run as ``os_user``, audited as direct; returns
    (run id, queue). The caller has checked that PostgreSQL and Redis answer."""
    request = adhoc_request(
        settings,
        get_executor,
        job_type=job_type,
        parameters=parameters,
        triggered_by=TriggeredBy.MANUAL,
        executed_by=os_user,
        queue=queue,
        timeout_seconds=timeout_seconds,
    )
    engine = create_engine(settings.database)
    redis = await open_redis(settings.redis.url, settings.redis.prefix)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            principal = await principal_named(session, os_user)
        request = await authorize_request(sessions, principal, request, get_executor)
        audit = AuditEntry(
            actor=os_user,
            action="run",
            resource_type="job_run",
            details={"job_type": request.job_type, "via": VIA_DIRECT, "os_user": os_user},
        )
        run_id = (await lifecycle.enqueue_run_row(sessions, redis, request, audit=audit)).id
    finally:
        await redis.aclose()
        await engine.dispose()
    return run_id, request.queue


def _bar(run: JobRun) -> str:
    progress = Progress(run.progress_current or 0, run.progress_total, run.progress_message)
    percent = progress.percent
    if percent is None:
        return f"{run.status:<9} {progress.message or ''}"
    filled = int(BAR_WIDTH * percent / 100)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"{run.status:<9} [{bar}] {percent:5.1f}% {progress.message or ''}"


async def follow_run(settings: Settings, run_id: int, *, fail_on: str | None = None) -> int:
    """Show progress until the run ends; print its result; 0 when it completed (and its
    outcome is below ``fail_on``)."""
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    interactive = sys.stderr.isatty()
    last_line = ""
    try:
        while True:
            async with sessions() as session:
                run = await session.get_one(JobRun, run_id)
            line = _bar(run)
            if line != last_line:
                sys.stderr.write(f"\r{line:<80}" if interactive else f"{line}\n")
                sys.stderr.flush()
                last_line = line
            if run.status in TERMINAL_STATUSES:
                break
            await asyncio.sleep(POLL_INTERVAL_S)
    finally:
        await engine.dispose()
    if interactive:
        sys.stderr.write("\n")
    outcome = f" ({run.outcome})" if run.outcome else ""
    print(f"run {run_id} {run.status}{outcome}: {run.summary or run.error or ''}", file=sys.stderr)
    print(json.dumps(run.result, indent=2, default=str))
    return exit_code(run.status, run.outcome, fail_on)

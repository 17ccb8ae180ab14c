"""What people do to runs: run a template now, cancel, retry — each with its audit row.

The API routers and the console call these, so both change runs by the same rules: a run
is queued only if the caller may use everything it names (``service.runs.authorization``),
and only a run the caller may see is cancelled or retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import get_visible
from service.access.principals import Principal
from service.db.engine import SessionFactory, retry_lost
from service.db.models import TERMINAL_STATUSES, JobTemplate, RunStatus, TriggeredBy
from service.errors import Conflict
from service.runs import lifecycle
from service.runs.authorization import authorize_request
from service.runs.lifecycle import RunRequest
from service.runs.queries import get_run, unfinished_targets
from service.runs.requests import JobTypes, template_request
from service.settings import Settings

_FINISHED = frozenset(status.value for status in TERMINAL_STATUSES)
# The run is committed when its audit row is written: a lost connection then is retried
# briefly rather than answering 503 for a run that was accepted.
AFTER_ACCEPT_RETRY_DELAYS_S = (0.1, 0.3, 1.0)
# Checks a manual run before it is queued (maintenance windows); raises to refuse it and
# returns what the run's audit row records of the check.
ManualRunGate = Callable[[RunRequest], Mapping[str, Any]]


async def audit_accepted(sessions: SessionFactory, write: Callable[[AsyncSession], object]) -> None:
    """Write the audit entry of an accepted run in a transaction of its own, repeated on a
    lost connection: the run is committed already, and its answer must not be lost to
    the audit write."""

    async def audit() -> None:
        async with sessions.begin() as session:
            write(session)

    await retry_lost("audit of a run", audit, delays=AFTER_ACCEPT_RETRY_DELAYS_S)


async def run_template_now(
    settings: Settings,
    job_types: JobTypes,
    sessions: SessionFactory,
    redis: ArqRedis,
    *,
    template_id: int,
    overrides: Mapping[str, Any],
    caller: Principal,
    client_ip: str | None,
    gate: ManualRunGate,
) -> lifecycle.Accepted:
    """Queue a run of a template with parameter overrides validated against its Config,
    once ``gate`` lets it through."""
    async with sessions() as session:
        template = await get_visible(
            session, JobTemplate, template_id, caller, label="job template"
        )
    run_request = template_request(
        settings,
        job_types,
        template,
        overrides=overrides,
        triggered_by=TriggeredBy.MANUAL,
        executed_by=caller.username,
    )
    run_request = await authorize_request(sessions, caller, run_request, job_types)
    passed = gate(run_request)
    accepted = await lifecycle.accept_run(sessions, redis, run_request)

    await audit_accepted(
        sessions,
        lambda session: record_audit(
            session,
            actor=caller.username,
            action="run",
            resource_type="job_template",
            resource_id=template_id,
            client_ip=client_ip,
            details={"run_id": accepted.run.id, **passed},
        ),
    )
    return accepted


async def cancel_run(
    sessions: SessionFactory,
    redis: ArqRedis,
    run_id: int,
    *,
    caller: Principal,
    client_ip: str | None,
) -> RunStatus:
    """Cancel a pending run at once, or ask the worker of a running run to stop it."""
    async with sessions() as session:
        await get_run(session, caller, run_id)
    status = await lifecycle.request_cancel(sessions, redis, run_id, cancelled_by=caller.username)
    async with sessions.begin() as session:
        record_audit(
            session,
            actor=caller.username,
            action="cancel",
            resource_type="job_run",
            resource_id=run_id,
            client_ip=client_ip,
        )
    return status


async def retry_run(
    sessions: SessionFactory,
    redis: ArqRedis,
    job_types: JobTypes,
    run_id: int,
    *,
    caller: Principal,
    failed_targets_only: bool,
    client_ip: str | None,
) -> lifecycle.Accepted:
    """A new run with the same inputs, linked to the original (``retry_of_id``), if the
    caller may use everything they name.

    With ``failed_targets_only`` it acts on the targets that did not succeed, and refuses
    (409) when there are none or the run had no targets.
    """
    async with sessions() as session:
        original = await get_run(session, caller, run_id)
        if original.status not in _FINISHED:
            raise Conflict(f"run {run_id} is still {original.status}; cancel it or wait")
        targets = None
        if failed_targets_only:
            targets = await unfinished_targets(session, run_id)
            if not targets:
                raise Conflict(f"run {run_id} has no failed targets to retry")
    retry = lifecycle.RunRequest(
        job_type=original.job_type,
        job_name=original.job_name,
        queue=original.queue,
        parameters=original.parameters,
        triggered_by=TriggeredBy.RETRY,
        executed_by=caller.username,
        template_id=original.template_id,
        retry_of_id=original.id,
        credential_id=original.credential_id,
        timeout_seconds=original.timeout_seconds,
        max_attempts=original.max_attempts,
        retry_policy=original.retry_policy,
        targets=targets,
    )
    retry = await authorize_request(sessions, caller, retry, job_types)
    accepted = await lifecycle.accept_run(sessions, redis, retry)

    await audit_accepted(
        sessions,
        lambda session: record_audit(
            session,
            actor=caller.username,
            action="retry",
            resource_type="job_run",
            resource_id=run_id,
            client_ip=client_ip,
            details={"new_run_id": accepted.run.id, "failed_targets_only": failed_targets_only},
        ),
    )
    return accepted

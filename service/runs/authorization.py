"""What a run uses, checked against the principal it runs as: when it is requested and
again when a worker starts it, before it uses anything.

A run uses its template, its schedule, its credential and every resource its parameters
name (the fields the job type's Config marks, see ``service.access.resources``). At
request time the check refuses the request and decides whether the run is private; at
start the worker asks again with the run's principal (``executed_by`` for manual and API
runs, the schedule's owner for scheduled ones, the system for system jobs), so a
resource that became private or changed hands after a schedule was saved fails the run
at once instead of being used.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.ownership import UseCheck, authorize, look_up
from service.access.principals import SYSTEM_NAME, Principal, principal_named, run_principal
from service.access.resources import ResourceKind, ResourceUse, names_resources, resource_uses
from service.access.visibility import run_private_to
from service.db.engine import SessionFactory
from service.db.models import JobRun
from service.errors import OpsjobsError
from service.runs.lifecycle import RunRequest, RunStart
from service.runs.requests import JobType, JobTypes, validated_config

logger = logging.getLogger(__name__)


class RunRefused(OpsjobsError):
    """The run's principal may not use something the run names; nothing was used."""

    code = "run_refused"


class RunLinks(Protocol):
    """What a run names besides its parameters (a ``RunRequest`` or a ``RunStart``)."""

    @property
    def template_id(self) -> int | None: ...

    @property
    def schedule_id(self) -> int | None: ...

    @property
    def credential_id(self) -> int | None: ...


_LINKS = {
    "template_id": ResourceKind.JOB_TEMPLATE,
    "schedule_id": ResourceKind.JOB_SCHEDULE,
    "credential_id": ResourceKind.CREDENTIAL,
}


def link_uses(links: RunLinks, names: Iterable[str] = tuple(_LINKS)) -> list[ResourceUse]:
    """The resources a run names besides its parameters (those of ``names``)."""
    values = ((name, getattr(links, name)) for name in names)
    return [
        ResourceUse(_LINKS[name], value, (name,)) for name, value in values if value is not None
    ]


def parameter_uses(job_type: JobType, parameters: Mapping[str, Any]) -> list[ResourceUse]:
    """The resources a run's parameters name (validated only when its Config marks any)."""
    if not names_resources(job_type.config):
        return []
    return resource_uses(validated_config(job_type, parameters), ("parameters",))


def run_uses(config: BaseModel, links: RunLinks) -> list[ResourceUse]:
    """Everything a run with this (validated) configuration and these links uses."""
    return link_uses(links) + resource_uses(config, ("parameters",))


async def authorize_request(
    sessions: SessionFactory, principal: Principal, request: RunRequest, job_types: JobTypes
) -> RunRequest:
    """``request`` if ``principal`` may use all it names, marked private when it uses a
    private resource; raises ``InvalidInput`` / ``Forbidden`` naming each refused use."""
    uses = link_uses(request) + parameter_uses(job_types(request.job_type), request.parameters)
    if not uses:
        return request
    async with sessions() as session:
        check = await authorize(session, principal, uses)
    return dataclasses.replace(request, private_to=run_private_to(check, principal))


class ScheduleOwner(Protocol):
    """Who a schedule's runs run as, and whether the schedule itself is global."""

    @property
    def owner(self) -> str | None: ...

    @property
    def is_global(self) -> bool: ...


async def authorize_schedule(
    session: AsyncSession,
    caller: Principal,
    schedule: ScheduleOwner,
    request: RunRequest,
    job_types: JobTypes,
) -> RunRequest:
    """``request`` (a run of ``schedule``) if the caller, and the owner its runs run as, may
    use all it names (refusals located in the request body); marked private when the
    schedule or anything it uses is private.

    Checked on every create and update: editing a schedule that uses what the caller may
    not use would let the caller direct it.
    """
    uses = link_uses(request) + parameter_uses(job_types(request.job_type), request.parameters)
    located = [dataclasses.replace(use, loc=("body", *use.loc)) for use in uses]
    check = await authorize(session, caller, located)
    owner = await principal_named(session, schedule.owner)
    if owner.username != caller.username:
        check.require(owner)
    private = check.private or not schedule.is_global
    return dataclasses.replace(request, private_to=owner.username if private else None)


async def mark_private(
    session: AsyncSession, requests: Sequence[RunRequest], job_types: JobTypes
) -> list[RunRequest]:
    """``requests`` (already validated) marked private to the principal each runs as when
    their credential or parameters name a private resource; one query per resource kind
    for the whole batch. Templates and schedules are the caller's to judge (the scheduler
    holds their rows)."""
    named = [
        link_uses(request, ("credential_id",))
        + parameter_uses(job_types(request.job_type), request.parameters)
        for request in requests
    ]
    found = (await look_up(session, [use for uses in named for use in uses])).found
    marked: list[RunRequest] = []
    for request, uses in zip(requests, named, strict=True):
        own, found = UseCheck(found[: len(uses)]), found[len(uses) :]
        if own.private and request.private_to is None:
            request = dataclasses.replace(request, private_to=request.executed_by or SYSTEM_NAME)
        marked.append(request)
    return marked


async def authorize_start(sessions: SessionFactory, start: RunStart, config: BaseModel) -> None:
    """Before a worker uses anything: refuse the run unless its principal may use all it
    names (:class:`RunRefused`), and mark it private if it uses a private resource."""
    uses = run_uses(config, start)
    if not uses:
        return
    async with sessions() as session:
        check = await look_up(session, uses)
        principal = await run_principal(session, start.triggered_by, start.executed_by)
    private_to = run_private_to(check, principal)
    if private_to is not None and start.private_to is None:
        async with sessions.begin() as session:
            await session.execute(
                update(JobRun).where(JobRun.id == start.run_id).values(private_to=private_to)
            )
    try:
        check.require(principal)
    except OpsjobsError as exc:
        logger.warning(
            "run refused: %s", exc.message, extra={"run_id": start.run_id, "as": principal.username}
        )
        raise RunRefused(
            f"refused before using anything: runs as {principal.username}; {exc.message}",
            details=exc.details,
        ) from None

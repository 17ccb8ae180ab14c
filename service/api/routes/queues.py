"""``/api/queues``: depth, work in progress and oldest waiting run per queue; purge a queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from service.access.audit import record_audit
from service.access.visibility import runs_visible_to
from service.api.auth import QueuesReader, QueuesWriter
from service.api.deps import RedisDep, SessionsDep, SettingsDep
from service.errors import NotFound
from service.queue.control import purge_queue, queue_stats

router = APIRouter(prefix="/api/queues", tags=["queues"])

QueueName = Annotated[str, Path(min_length=1, max_length=64)]


class QueueOut(BaseModel):
    name: str
    configured: bool
    pending: int
    running: int
    arq_jobs: int
    oldest_queued_at: datetime | None
    oldest_queued_age_seconds: float | None


class QueuesOut(BaseModel):
    items: list[QueueOut]


class PurgeOut(BaseModel):
    queue: str
    cancelled: int
    run_ids: list[int]


@router.get("", response_model=QueuesOut)
async def list_queues(
    caller: QueuesReader, settings: SettingsDep, sessions: SessionsDep, redis: RedisDep
) -> QueuesOut:
    """Each configured queue (and any other queue with active runs the caller may see):
    pending and running runs, jobs in the arq queue, and how long the oldest pending run
    has waited."""
    stats = await queue_stats(sessions, redis, settings.queues.names(), runs_visible_to(caller))
    return QueuesOut(items=[QueueOut.model_validate(item, from_attributes=True) for item in stats])


@router.post("/{name}/purge", response_model=PurgeOut)
async def purge(
    name: QueueName,
    caller: QueuesWriter,
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
) -> PurgeOut:
    """Cancel every pending run of the queue and remove its job; running runs go on."""
    known = {item.name for item in await queue_stats(sessions, redis, settings.queues.names())}
    if name not in known:
        raise NotFound(f"queue {name} is not configured and has no active runs")
    run_ids = await purge_queue(sessions, redis, name, cancelled_by=caller.username)
    async with sessions.begin() as session:
        record_audit(
            session,
            actor=caller.username,
            action="purge",
            resource_type="queue",
            resource_id=name,
            request=request,
            details={"cancelled": len(run_ids)},
        )
    return PurgeOut(queue=name, cancelled=len(run_ids), run_ids=run_ids)

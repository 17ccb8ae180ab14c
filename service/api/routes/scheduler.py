"""``/api/scheduler/status``: is the scheduler ticking, how late is it, what fires next."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.auth import SchedulesReader
from service.api.deps import RedisDep, SessionDep
from service.scheduling.status import SchedulerStatusOut, read_scheduler_status

router = APIRouter(prefix="/api/scheduler", tags=["scheduler"])


@router.get("/status", response_model=SchedulerStatusOut)
async def scheduler_status(
    caller: SchedulesReader, session: SessionDep, redis: RedisDep
) -> SchedulerStatusOut:
    """Server time, the last tick (when, how long, how late), what is due and the next fires.

    Each figure is one indexed query; nothing loads every schedule.
    """
    return await read_scheduler_status(session, redis, caller)

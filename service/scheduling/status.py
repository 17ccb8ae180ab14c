"""The scheduler at a glance: is it ticking, how late is it, what fires next.

Each figure is one indexed query; nothing loads every schedule. The API's
``/api/scheduler/status`` and the console's health page both show this.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.ownership import visible_to
from service.access.principals import Principal
from service.db.models import JobSchedule
from service.scheduling.claims import last_tick

UPCOMING = 10


class TickOut(BaseModel):
    at: datetime
    age_seconds: float
    duration_ms: float
    claimed: int
    queued: int
    lag_seconds: float


class UpcomingOut(BaseModel):
    id: int
    job_identifier: str
    schedule_type: str
    timezone: str
    next_run_at: datetime
    next_run_local: datetime
    seconds_until: float


class SchedulerStatusOut(BaseModel):
    server_time: datetime
    last_tick: TickOut | None
    total_schedules: int
    active_schedules: int
    due_now: int
    oldest_due_seconds: float | None
    upcoming: list[UpcomingOut]


async def read_scheduler_status(
    session: AsyncSession, redis: ArqRedis, caller: Principal
) -> SchedulerStatusOut:
    """Server time, the last tick (when, how long, how late), what is due and the next fires.

    Each figure is one indexed query; nothing loads every schedule. Counts cover every
    schedule; the upcoming fires name only schedules ``caller`` may see.
    """
    now = datetime.now(UTC)
    due = (
        await session.execute(
            select(func.count(), func.min(JobSchedule.next_run_at)).where(
                JobSchedule.is_active,
                JobSchedule.next_run_at.is_not(None),
                JobSchedule.next_run_at <= now,
            )
        )
    ).one()
    totals = (
        await session.execute(
            select(func.count(), func.count().filter(JobSchedule.is_active)).select_from(
                JobSchedule
            )
        )
    ).one()
    upcoming = await session.execute(
        select(
            JobSchedule.id,
            JobSchedule.job_identifier,
            JobSchedule.schedule_type,
            JobSchedule.timezone,
            JobSchedule.next_run_at,
        )
        .where(
            JobSchedule.is_active,
            JobSchedule.next_run_at.is_not(None),
            JobSchedule.next_run_at > now,
            visible_to(JobSchedule, caller),
        )
        .order_by(JobSchedule.next_run_at)
        .limit(UPCOMING)
    )
    tick = await last_tick(redis)
    return SchedulerStatusOut(
        server_time=now,
        last_tick=_tick_out(tick, now) if tick else None,
        total_schedules=totals[0],
        active_schedules=totals[1],
        due_now=due[0],
        oldest_due_seconds=(now - due[1]).total_seconds() if due[1] is not None else None,
        upcoming=[
            UpcomingOut(
                id=row.id,
                job_identifier=row.job_identifier,
                schedule_type=row.schedule_type,
                timezone=row.timezone,
                next_run_at=row.next_run_at,
                next_run_local=row.next_run_at.astimezone(ZoneInfo(row.timezone)),
                seconds_until=(row.next_run_at - now).total_seconds(),
            )
            for row in upcoming
        ],
    )


def _tick_out(tick: dict[str, str], now: datetime) -> TickOut:
    at = datetime.fromisoformat(tick["at"])
    return TickOut(
        at=at,
        age_seconds=(now - at).total_seconds(),
        duration_ms=round(float(tick["duration"]) * 1000, 3),
        claimed=int(tick["claimed"]),
        queued=int(tick["queued"]),
        lag_seconds=float(tick["lag"]),
    )

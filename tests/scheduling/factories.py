"""Templates and schedules written straight to the database for scheduler tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from service.db.engine import SessionFactory
from service.db.models import JobSchedule, JobTemplate


async def make_template(
    sessions: SessionFactory, *, job_type: str = "diag.echo", **values: Any
) -> int:
    async with sessions.begin() as session:
        template = JobTemplate(
            name=values.pop("name", f"t-{job_type}"), job_type=job_type, **values
        )
        session.add(template)
        await session.flush()
        return template.id


def schedule_row(
    template_id: int, identifier: str, next_run_at: datetime | None, **values: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job_identifier": identifier,
        "template_id": template_id,
        "schedule_type": "interval",
        "interval_minutes": 10,
        "timezone": "UTC",
        "parameters": {},
        "misfire_policy": "run_once",
        "misfire_cap": 10,
        "overlap_policy": "skip",
        "next_run_at": next_run_at,
        "is_active": True,
        "start_at": None,
    }
    row.update(values)
    return row


async def make_schedules(sessions: SessionFactory, rows: list[dict[str, Any]]) -> list[int]:
    async with sessions.begin() as session:
        result = await session.execute(
            insert(JobSchedule).returning(JobSchedule.id, sort_by_parameter_order=True), rows
        )
        return [row.id for row in result]


async def make_schedule(
    sessions: SessionFactory, template_id: int, next_run_at: datetime | None, **values: Any
) -> int:
    identifier = values.pop("job_identifier", f"s-{next_run_at}-{sorted(values.items())}")
    (schedule_id,) = await make_schedules(
        sessions, [schedule_row(template_id, identifier, next_run_at, **values)]
    )
    return schedule_id

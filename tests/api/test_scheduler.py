"""``/api/scheduler/status``: the last tick, what is due now and the next fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from executors.services import Services
from service.scheduling.claims import tick
from tests.scheduling.factories import make_schedule, make_template


async def test_status_before_and_after_a_tick(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id = await make_template(services.sessions)
    now = datetime.now(UTC)
    for minutes in (-2, -1):
        await make_schedule(
            services.sessions,
            template_id,
            now + timedelta(minutes=minutes),
            job_identifier=f"due{minutes}",
        )
    for minutes in range(1, 13):
        await make_schedule(
            services.sessions,
            template_id,
            now + timedelta(minutes=minutes),
            job_identifier=f"later{minutes:02}",
            timezone="America/New_York",
        )
    await make_schedule(services.sessions, template_id, now, is_active=False, job_identifier="off")

    before = (await client.get("/api/scheduler/status")).json()
    assert before["last_tick"] is None
    assert (before["total_schedules"], before["active_schedules"]) == (15, 14)
    assert before["due_now"] == 2
    assert 120 <= before["oldest_due_seconds"] < 130
    upcoming = before["upcoming"]
    assert [item["job_identifier"] for item in upcoming] == [f"later{m:02}" for m in range(1, 11)]
    assert upcoming[0]["next_run_local"][-6:] in ("-05:00", "-04:00")
    assert 0 < upcoming[0]["seconds_until"] <= 60

    report = await tick(services)
    after = (await client.get("/api/scheduler/status")).json()
    assert after["due_now"] == 0
    assert after["oldest_due_seconds"] is None
    last = after["last_tick"]
    assert (last["claimed"], last["queued"]) == (2, 2)
    assert last["lag_seconds"] >= 120
    assert last["duration_ms"] == round(report.duration * 1000, 3)
    assert 0 <= last["age_seconds"] < 10

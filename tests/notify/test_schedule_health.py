"""Schedule health: the dead-man's switch fires and recovers, K failures pause a schedule,
a run far slower than its schedule's p95 is a warning."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, update

from executors.services import Services
from lab.alert_sink import AlertSink
from service.db.models import JobRun, JobSchedule, Outcome, RunStatus
from tests.notify.conftest import finished_run, rule, settle, webhook_channel


async def schedule(client: httpx.AsyncClient, **health: object) -> dict[str, object]:
    template = (
        await client.post(
            "/api/job-templates",
            json={"name": "echo", "job_type": "diag.echo", "is_global": True},
        )
    ).json()
    response = await client.post(
        "/api/job-schedules",
        json={
            "job_identifier": "echo hourly",
            "template_id": template["id"],
            "schedule_type": "hourly",
            "time_of_day": "00:17",
            **health,
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def age_schedule(services: Services, schedule_id: int, minutes: float) -> None:
    """The controllable clock: the schedule was made, and last succeeded, that long ago."""
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobSchedule)
            .where(JobSchedule.id == schedule_id)
            .values(
                created_at=func.now() - timedelta(minutes=minutes),
                last_success_at=func.coalesce(
                    JobSchedule.last_success_at - timedelta(minutes=minutes), None
                ),
            )
        )


async def test_expect_success_within_fires_once_and_recovers(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["schedule.unhealthy", "schedule.recovered"], [hook])
    created = await schedule(client, expect_success_within=30)
    schedule_id = int(str(created["id"]))
    assert created["health"] == {
        "state": "unknown",
        "last_success_at": None,
        "consecutive_failures": 0,
        "reason": None,
    }
    await settle(services)
    assert sink.webhooks == []  # 30 minutes have not passed

    await age_schedule(services, schedule_id, 31)
    await settle(services)
    await settle(services)

    assert [call.body["event"] for call in sink.webhooks] == ["schedule.unhealthy"]
    assert "has not succeeded for 30 minutes" in sink.webhooks[0].body["title"]
    shown = (await client.get(f"/api/job-schedules/{schedule_id}")).json()
    assert shown["health"]["state"] == "unhealthy"
    assert "no successful run within 30 minutes (last success: never)" in shown["health"]["reason"]
    unhealthy = (await client.get("/api/job-schedules", params={"health": "unhealthy"})).json()
    assert [item["id"] for item in unhealthy["items"]] == [schedule_id]
    assert (await client.get("/api/job-schedules", params={"health": "ok"})).json()["total"] == 0
    bad = await client.get("/api/job-schedules", params={"health": "sick"})
    assert bad.status_code == 422

    run_id = await finished_run(services, schedule_id=schedule_id, outcome=Outcome.OK)
    await settle(services)

    assert [call.body["event"] for call in sink.webhooks] == [
        "schedule.unhealthy",
        "schedule.recovered",
    ]
    assert sink.webhooks[1].body["run_id"] == run_id
    shown = (await client.get(f"/api/job-schedules/{schedule_id}")).json()
    assert shown["health"]["state"] == "ok"
    assert shown["health"]["last_success_at"] is not None
    assert shown["health"]["reason"] is None


async def test_k_failed_runs_in_a_row_pause_the_schedule(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["schedule.paused"], [hook])
    created = await schedule(client, pause_after_failures=3)
    schedule_id = int(str(created["id"]))
    await finished_run(services, schedule_id=schedule_id, status=RunStatus.FAILED)
    await finished_run(services, schedule_id=schedule_id, status=RunStatus.FAILED)
    await finished_run(services, schedule_id=schedule_id, outcome=Outcome.OK)  # resets
    for _ in range(3):
        last = await finished_run(
            services, schedule_id=schedule_id, status=RunStatus.FAILED, error="device refused"
        )
    await settle(services)

    shown = (await client.get(f"/api/job-schedules/{schedule_id}")).json()
    assert shown["is_active"] is False
    assert shown["next_run_at"] is None
    assert shown["health"]["state"] == "paused"
    assert shown["health"]["consecutive_failures"] == 3
    assert (
        f"paused after 3 failed runs in a row (last: run {last}: device refused)"
        in (shown["health"]["reason"])
    )
    assert "its owner (admin) or an admin resumes it" in shown["health"]["reason"]
    assert [call.body["event"] for call in sink.webhooks] == ["schedule.paused"]
    assert sink.webhooks[0].body["schedule_id"] == schedule_id

    resumed = await client.put(f"/api/job-schedules/{schedule_id}", json={"is_active": True})
    assert resumed.status_code == 200
    assert resumed.json()["health"]["state"] == "unknown"
    assert resumed.json()["health"]["consecutive_failures"] == 0
    assert resumed.json()["next_run_at"] is not None


async def test_a_run_slower_than_k_times_the_p95_is_a_warning(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.duration_anomaly"], [hook])
    created = await schedule(client, duration_anomaly_factor=3)
    schedule_id = int(str(created["id"]))
    run_ids = [await finished_run(services, schedule_id=schedule_id) for _ in range(7)]
    async with services.sessions.begin() as session:
        for index, run_id in enumerate(run_ids):
            seconds = 100 if index == len(run_ids) - 1 else 10 + index
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(started_at=JobRun.finished_at - timedelta(seconds=seconds))
            )
    await settle(services)

    assert [call.body["event"] for call in sink.webhooks] == ["run.duration_anomaly"]
    body = sink.webhooks[0].body
    assert body["run_id"] == run_ids[-1]
    assert body["severity"] == "warning"
    assert "took 100.0 s" in body["title"]

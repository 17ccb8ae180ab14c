"""Maintenance windows: when they are open, fires inside them skipped with the reason and
marked in the preview, manual runs refused without an override (audited with one), and
devices inside a window skipped inside a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from executors.services import Services
from service.db.models import JobRun, JobSchedule, RunStatus, TargetStatus
from service.db.security_models import AuditEvent
from service.scheduling.claims import tick
from service.scheduling.windows import Window, recurrence_spec
from tests.device_lab import (
    add_command_template,
    add_credential,
    add_inventory,
    condition,
    eight_device_lab,
    run_device_job,
    target_rows,
    tree_of,
)

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Europe/Berlin moves to summer time
# Every night 01:00-03:00 Berlin time.
NIGHTLY = Window(
    1,
    "nightly",
    recurrence=recurrence_spec("0 1 * * *", "Europe/Berlin"),
    duration=timedelta(hours=2),
)


@pytest.mark.parametrize(
    ("window", "at", "open_"),
    [
        (Window(1, "w", start_at=T0, end_at=T0 + timedelta(hours=1)), T0, True),
        (
            Window(1, "w", start_at=T0, end_at=T0 + timedelta(hours=1)),
            T0 - timedelta(seconds=1),
            False,
        ),
        (
            Window(1, "w", start_at=T0, end_at=T0 + timedelta(hours=1)),
            T0 + timedelta(hours=1),
            False,
        ),
        # The nightly window is 00:00-02:00 UTC in winter...
        (
            NIGHTLY,
            datetime(2026, 1, 10, 0, 59, tzinfo=UTC),
            True,
        ),
        (
            NIGHTLY,
            datetime(2026, 1, 10, 2, 0, tzinfo=UTC),
            False,
        ),
        # ...and 23:00-01:00 UTC in summer.
        (
            NIGHTLY,
            datetime(2026, 7, 10, 23, 30, tzinfo=UTC),
            True,
        ),
    ],
)
def test_when_a_window_is_open(window: Window, at: datetime, open_: bool) -> None:
    assert window.is_open(at) is open_


def test_scopes_left_out_mean_all() -> None:
    everything = Window(1, "all")
    assert everything.scopes(template_id=None, schedule_id=None, job_type="diag.echo")
    only = Window(1, "t", template_ids=frozenset({3}), job_types=frozenset({"backup"}))
    assert only.scopes(template_id=3, schedule_id=9, job_type="backup")
    assert not only.scopes(template_id=3, schedule_id=9, job_type="run_commands")
    assert not only.scopes(template_id=4, schedule_id=9, job_type="backup")


async def _template_and_schedule(client: httpx.AsyncClient) -> tuple[int, int]:
    template = (
        await client.post(
            "/api/job-templates", json={"name": "echo", "job_type": "diag.echo", "is_global": True}
        )
    ).json()
    schedule = (
        await client.post(
            "/api/job-schedules",
            json={
                "job_identifier": "echo every minute",
                "template_id": template["id"],
                "schedule_type": "interval",
                "interval_minutes": 1,
            },
        )
    ).json()
    return template["id"], schedule["id"]


async def test_fires_inside_a_window_are_skipped_with_the_reason_and_previewed(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id, schedule_id = await _template_and_schedule(client)
    now = datetime.now(UTC).replace(microsecond=0)
    window = await client.post(
        "/api/maintenance-windows",
        json={
            "name": "core freeze",
            "start_at": (now - timedelta(minutes=5)).isoformat(),
            "end_at": (now + timedelta(minutes=3, seconds=30)).isoformat(),
            "template_ids": [template_id],
        },
    )
    assert window.status_code == 201, window.text
    assert window.json()["active"] is True

    preview = (await client.get(f"/api/job-schedules/{schedule_id}/preview?count=6")).json()
    marks = [fire["maintenance"] for fire in preview["fires"]]
    assert marks[:3] == [["core freeze"]] * 3
    assert marks[4:] == [[], []]

    async with services.sessions.begin() as session:
        await session.execute(
            update(JobSchedule).where(JobSchedule.id == schedule_id).values(next_run_at=now)
        )
    report = await tick(services, now)
    assert report.queued == 0
    assert report.skipped == 1
    async with services.sessions() as session:
        run = (await session.scalars(select(JobRun).where(JobRun.schedule_id == schedule_id))).one()
    assert run.status == RunStatus.SKIPPED
    assert run.reason == 'maintenance window "core freeze"'
    assert run.scheduled_for == now


async def test_manual_runs_inside_a_window_need_an_override_and_are_audited(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id, schedule_id = await _template_and_schedule(client)
    created = await client.post(
        "/api/maintenance-windows",
        json={
            "name": "weekly",
            "cron_expression": "* * * * *",
            "duration_minutes": 2,
            "timezone": "Europe/Berlin",
            "job_types": ["diag.echo"],
        },
    )
    assert created.status_code == 201, created.text
    for path, body in (
        ("/api/job-runs", {"job_type": "diag.echo"}),
        (f"/api/job-templates/{template_id}/run", {}),
        (f"/api/job-schedules/{schedule_id}/run", {}),
    ):
        refused = await client.post(path, json=body)
        assert refused.status_code == 409, path
        error = refused.json()["error"]
        assert 'maintenance window "weekly"' in error["message"]
        assert error["details"]["loc"] == ["body", "override_maintenance"]
        allowed = await client.post(path, json={**body, "override_maintenance": True})
        assert allowed.status_code == 202, path
    other = await client.post("/api/job-runs", json={"job_type": "diag.progress"})
    assert other.status_code == 202  # out of the window's scope
    async with services.sessions() as session:
        audited = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "run"))
        ).all()
    overrides = [row.details for row in audited if row.details.get("override_maintenance")]
    assert len(overrides) == 3
    assert all(row["maintenance_windows"] == ["weekly"] for row in overrides)


async def test_bad_windows_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    both = await client.post(
        "/api/maintenance-windows",
        json={"name": "x", "start_at": "2026-01-01T00:00:00Z", "cron_expression": "* * * * *"},
    )
    assert both.status_code == 422
    bad_cron = await client.post(
        "/api/maintenance-windows",
        json={"name": "x", "cron_expression": "61 * * * *", "duration_minutes": 5},
    )
    assert bad_cron.status_code == 422
    assert bad_cron.json()["error"]["details"][0]["loc"][:2] == ["body", "cron_expression"]
    backwards = await client.post(
        "/api/maintenance-windows",
        json={"name": "x", "start_at": "2026-01-02T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    no_inventory = await client.post(
        "/api/maintenance-windows",
        json={
            "name": "x",
            "cron_expression": "0 1 * * *",
            "duration_minutes": 5,
            "inventory_id": 999,
        },
    )
    assert no_inventory.status_code == 422
    assert no_inventory.json()["error"]["details"][0]["loc"] == ["body", "inventory_id"]


async def test_devices_inside_a_window_are_skipped_inside_a_run(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    async with eight_device_lab(tmp_path) as lab:
        credential = await add_credential(services)
        fra1 = await add_inventory(services, tree_of(condition("location", "equals", "fra1")))
        template = await add_command_template(services, "show version\n")
        now = datetime.now(UTC)
        window = await client.post(
            "/api/maintenance-windows",
            json={
                "name": "fra1 rack move",
                "start_at": (now - timedelta(minutes=1)).isoformat(),
                "end_at": (now + timedelta(hours=1)).isoformat(),
                "inventory_id": fra1,
            },
        )
        assert window.status_code == 201, window.text
        run = await run_device_job(
            services,
            lab,
            "run_commands",
            {"targets": {"all": True}, "command_template_id": template},
            credential_id=credential,
        )
        rows = await target_rows(services, run.id)
        in_fra1 = {name for name in rows if name.startswith("fra1-")}
        assert len(in_fra1) == 4
        for name, row in rows.items():
            if name in in_fra1:
                assert row.status == TargetStatus.SKIPPED
                assert row.result == {"skipped": 'maintenance window "fra1 rack move"'}
                assert lab.fleet.device(name).logins == 0
            else:
                assert row.status == TargetStatus.SUCCEEDED
        assert run.status == RunStatus.COMPLETED

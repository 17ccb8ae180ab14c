"""``opsjobs lab``: simulators seeded into the database give real runs out of the box."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from executors import get_executor
from executors.services import Services
from lab.alert_sink import AlertSink
from lab.stack import (
    device_lab,
    nifi_lab,
    prepare_lab_files,
    seed_alerts,
    seed_devices,
    seed_nifi,
)
from service.db.models import JobRun, JobSchedule, JobTemplate, RunStatus, TriggeredBy
from service.db.nifi_models import NifiClusterRow, NifiInstanceRow
from service.db.notify_models import NotificationChannel
from service.notify.cycle import notification_pass
from service.runs import lifecycle
from service.runs.requests import template_request
from service.scheduling.claims import tick
from service.settings import LabSettings
from tests.workers import drain


async def count(services: Services, model: type) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_seeded_lab_runs_a_real_check(services: Services) -> None:
    async with nifi_lab(LabSettings(nifi_port=0)) as clusters:
        await seed_nifi(services.sessions, services.keys, clusters)
        await seed_nifi(services.sessions, services.keys, clusters)  # idempotent
        assert await count(services, NifiClusterRow) == 2
        assert await count(services, NifiInstanceRow) == 6
        async with services.sessions() as session:
            schedules = (await session.scalars(select(JobSchedule))).all()
            templates = {t.name: t for t in await session.scalars(select(JobTemplate))}
        assert set(templates) == {"lab: queue backlog", "lab: cluster health", "lab: bulletins"}
        assert len(schedules) == 3
        assert all(schedule.next_run_at is not None for schedule in schedules)

        run_ids = {}
        for name, template in templates.items():
            request = template_request(
                services.settings,
                get_executor,
                template,
                overrides={},
                triggered_by=TriggeredBy.MANUAL,
                executed_by="test",
            )
            run_ids[name] = await lifecycle.enqueue_run(services.sessions, services.redis, request)
        await drain(services.settings)
    async with services.sessions() as session:
        runs = {name: await session.get_one(JobRun, run_id) for name, run_id in run_ids.items()}
    assert {run.status for run in runs.values()} == {RunStatus.COMPLETED}
    backlog = runs["lab: queue backlog"]
    assert backlog.outcome == "critical"
    assert backlog.result is not None
    assert backlog.result["summary"] == {"green": 1, "yellow": 0, "red": 1}
    assert runs["lab: cluster health"].outcome == "ok"
    assert runs["lab: bulletins"].outcome == "ok"


async def test_seeded_devices_run_commands_and_backup(services: Services, tmp_path: Path) -> None:
    lab = LabSettings(nautobot_port=0, device_count=6, state_dir=tmp_path / "lab")
    settings = services.settings.model_copy(
        update={
            "lab": lab,
            "ssh": services.settings.ssh.model_copy(update={"known_hosts": tmp_path / "known"}),
            "git": services.settings.git.model_copy(update={"checkout_root": tmp_path / "git"}),
        }
    )
    host_key = prepare_lab_files(settings)
    assert prepare_lab_files(settings).export_public_key() == host_key.export_public_key()
    assert (tmp_path / "known").read_text().count("[127.0.0.1]:*") == 1
    async with device_lab(settings, host_key) as (nautobot, fleet):
        settings = settings.model_copy(
            update={"nautobot": settings.nautobot.model_copy(update={"url": nautobot.url})}
        )
        await seed_devices(services.sessions, services.keys)
        await seed_devices(services.sessions, services.keys)  # idempotent
        async with services.sessions() as session:
            templates = {
                row.name: row
                for row in (
                    await session.scalars(
                        select(JobTemplate).where(JobTemplate.job_type != "check_queues")
                    )
                )
            }
        assert set(templates) == {"lab: show version", "lab: config backup"}
        run_ids = [
            await lifecycle.enqueue_run(
                services.sessions,
                services.redis,
                template_request(
                    settings,
                    get_executor,
                    template,
                    overrides={},
                    triggered_by=TriggeredBy.MANUAL,
                    executed_by="test",
                ),
            )
            for template in templates.values()
        ]
        await drain(settings, settings.queues.devices)
    async with services.sessions() as session:
        finished = [await session.get_one(JobRun, run_id) for run_id in run_ids]
    assert [(run.status, run.outcome) for run in finished] == [("completed", "ok")] * 2
    assert all(len(run.targets or []) == len(fleet.devices) for run in finished)


async def test_the_seeded_rule_sends_the_red_backlog_check_to_both_receivers(
    services: Services,
) -> None:
    """What `make run` shows: the first backlog check fires at once, finds red, and the
    lab's webhook receiver and SMTP sink get the alert."""
    async with nifi_lab(LabSettings(nifi_port=0)) as clusters, AlertSink() as sink:
        settings = LabSettings(alerts_port=sink.http.port, smtp_port=sink.smtp_port)
        await seed_nifi(services.sessions, services.keys, clusters)
        await seed_alerts(services.sessions, services.keys, sink, settings)
        await seed_alerts(services.sessions, services.keys, sink, settings)  # idempotent
        report = await tick(services)
        assert report.queued == 1
        await drain(services.settings)
        await notification_pass(services)
        await notification_pass(services)
        async with asyncio.timeout(10):
            await sink.mail_arrived.wait()
        async with httpx.AsyncClient() as http:
            received = (await http.get(f"http://{sink.host}:{sink.http.port}/received")).json()
    assert len(sink.webhooks) == 1
    hook = sink.webhooks[0]
    assert hook.signature_ok is True
    assert hook.body["event"] == "run.outcome_changed"
    assert hook.body["details"]["outcome"] == "critical"
    assert "lab: queue backlog" in hook.body["title"]
    assert len(sink.mails) == 1
    assert sink.mails[0].rcpt_to == ["oncall@lab.example"]
    assert "critical" in sink.mails[0].subject
    assert len(received["webhooks"]) == 1
    assert received["mails"][0]["rcpt_to"] == ["oncall@lab.example"]


async def instance_urls(services: Services) -> dict[str, str]:
    async with services.sessions() as session:
        return {row.name: row.url for row in await session.scalars(select(NifiInstanceRow))}


async def test_seeding_again_follows_moved_ports_and_says_what_changed(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lab.stack")
    async with nifi_lab(LabSettings(nifi_port=0)) as clusters:
        await seed_nifi(services.sessions, services.keys, clusters)
    first = await instance_urls(services)
    assert "lab NiFi clusters seeded: 2" in caplog.messages
    caplog.clear()

    # The simulator comes back on another port (lab.nifi_port changed).
    async with nifi_lab(LabSettings(nifi_port=0)) as moved:
        await seed_nifi(services.sessions, services.keys, moved)
        second = await instance_urls(services)
        assert second == {
            f"{cluster.name}-{index + 1}": url
            for cluster in moved
            for index, url in enumerate(cluster.member_urls)
        }
        assert second.keys() == first.keys()
        assert all(second[name] != first[name] for name in first)
        assert await count(services, NifiClusterRow) == 2
        assert (
            f"updated NiFi instance lab-east-1 url {first['lab-east-1']} → {second['lab-east-1']}"
            in caplog.messages
        )
        assert not any("seeded" in message for message in caplog.messages)
        caplog.clear()
        await seed_nifi(services.sessions, services.keys, moved)
        assert caplog.messages == ["lab NiFi clusters up to date"]

    caplog.clear()
    async with AlertSink() as sink:
        before = LabSettings(alerts_port=18083, smtp_port=18025)
        after = LabSettings(alerts_port=28083, smtp_port=28025)
        await seed_alerts(services.sessions, services.keys, sink, before)
        await seed_alerts(services.sessions, services.keys, sink, after)
    async with services.sessions() as session:
        configs = {
            row.name: row.config for row in await session.scalars(select(NotificationChannel))
        }
    assert configs["lab: webhook receiver"]["url"] == "http://127.0.0.1:28083/hooks/lab"
    assert configs["lab: mail sink"]["port"] == 28025
    assert (
        "updated channel lab: webhook receiver url http://127.0.0.1:18083/hooks/lab → "
        "http://127.0.0.1:28083/hooks/lab"
    ) in caplog.messages
    assert "updated channel lab: mail sink port 18025 → 28025" in caplog.messages
    assert await count(services, NotificationChannel) == 2

"""Alerts reach real receivers on loopback: a webhook server that checks the signature
and an SMTP server; one alert per verdict, never a storm, nothing lost while one is down."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from executors.services import Services
from lab.alert_sink import AlertSink
from service.db.models import JobRun, JobTemplate, Outcome, RunStatus, TriggeredBy
from service.db.notify_models import NotificationDelivery
from service.notify.cycle import notification_pass
from service.notify.delivery import deliver_due
from service.notify.routing import route_events
from service.notify.verdicts import interpret_facts
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.worker.maintenance import reap_lost_runs
from tests.notify.conftest import (
    email_channel,
    finished_run,
    rule,
    settle,
    webhook_channel,
)
from tests.workers import drain, running_worker


async def template(services: Services, name: str = "backlog") -> int:
    async with services.sessions.begin() as session:
        row = JobTemplate(name=name, job_type="diag.echo", is_global=True, owner="admin")
        session.add(row)
        await session.flush()
        return row.id


async def test_a_failed_run_alerts_once_by_signed_webhook_and_by_mail(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    mail = await email_channel(client, sink)
    await rule(client, ["run.failed"], [hook, mail])
    run_id = await finished_run(services, status=RunStatus.FAILED, error="NiFi said 503")

    await settle(services)
    await settle(services)  # a second pass finds nothing new to send

    assert len(sink.webhooks) == 1
    call = sink.webhooks[0]
    assert call.signature_ok is True
    assert call.headers["x-opsjobs-event"] == "run.failed"
    assert call.headers["x-team"] == "nifi-ops"
    body = call.body
    assert body["event"] == "run.failed"
    assert body["run_id"] == run_id
    assert body["severity"] == "critical"
    assert "NiFi said 503" in body["text"]
    assert body["link"] == f"{services.settings.api.public_url}/runs/{run_id}"
    assert body["delivery_id"] == int(call.headers["x-opsjobs-delivery"])
    assert len(sink.mails) == 1
    assert sink.mails[0].rcpt_to == ["oncall@example.net"]
    assert "failed" in sink.mails[0].subject
    assert "NiFi said 503" in sink.mails[0].text

    listed = (await client.get("/api/notifications/deliveries")).json()
    assert listed["total"] == 2
    assert {item["status"] for item in listed["items"]} == {"delivered"}
    assert {item["attempts"] for item in listed["items"]} == {1}
    webhook_delivery = next(item for item in listed["items"] if item["channel_id"] == hook)
    assert webhook_delivery["status_code"] == 200
    detail = (await client.get(f"/api/notifications/deliveries/{webhook_delivery['id']}")).json()
    assert [attempt["ok"] for attempt in detail["attempt_log"]] == [True]


async def test_four_hundred_failing_targets_give_one_message_listing_them(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.failed"], [hook])
    await finished_run(
        services, status=RunStatus.FAILED, targets=400, failed_targets=400, error="all failed"
    )

    await settle(services)

    assert len(sink.webhooks) == 1
    body = sink.webhooks[0].body
    assert "400 of 400 targets failed: switch-000, switch-001" in body["text"]
    assert "and 380 more" in body["text"]
    assert body["details"]["failed_target_count"] == 400
    assert len(body["details"]["failed_targets"]) == services.settings.notify.max_listed_targets


async def test_ok_critical_ok_gives_one_alert_and_one_recovery(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    template_id = await template(services)
    await rule(client, ["run.outcome_changed"], [hook], template_ids=[template_id])
    for outcome in (Outcome.OK, Outcome.OK, Outcome.CRITICAL, Outcome.CRITICAL, Outcome.OK):
        await finished_run(services, outcome=outcome, template_id=template_id)
    other = await template(services, "another")
    await finished_run(services, outcome=Outcome.CRITICAL, template_id=other)  # out of scope

    await settle(services)

    bodies = [call.body for call in sink.webhooks]
    assert [body["details"]["outcome"] for body in bodies] == ["critical", "ok"]
    assert [body["details"]["previous_outcome"] for body in bodies] == ["ok", "critical"]
    assert "recovered ok (was critical)" in bodies[1]["title"]
    assert all(call.signature_ok for call in sink.webhooks)


async def test_a_receiver_down_for_a_while_gets_everything_afterwards_once_in_order(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.failed"], [hook])
    await sink.http.stop()
    run_ids = [
        await finished_run(services, status=RunStatus.FAILED, error=f"failure {i}")
        for i in range(3)
    ]
    await notification_pass(services)
    async with services.sessions() as session:
        deliveries = (await session.scalars(select(NotificationDelivery))).all()
    assert len(deliveries) == 3
    # Only the oldest is tried while the receiver is down; the others wait behind it.
    assert sorted(delivery.attempts for delivery in deliveries) == [0, 0, 1]
    failing = next(delivery for delivery in deliveries if delivery.attempts == 1)
    assert failing.status == "pending"
    assert failing.last_error is not None
    assert "Connect" in failing.last_error

    # Pretend the backoff passed, as it does while the receiver stays down.
    for _ in range(3):
        async with services.sessions.begin() as session:
            await session.execute(
                update(NotificationDelivery).values(next_attempt_at=NotificationDelivery.created_at)
            )
        await notification_pass(services)
    await sink.http.start()  # back, on the same port
    async with services.sessions.begin() as session:
        await session.execute(
            update(NotificationDelivery).values(next_attempt_at=NotificationDelivery.created_at)
        )
    for _ in range(5):
        await notification_pass(services)

    assert [call.body["run_id"] for call in sink.webhooks] == run_ids
    listed = (
        await client.get("/api/notifications/deliveries", params={"status": "delivered"})
    ).json()
    assert listed["total"] == 3
    oldest = min(listed["items"], key=lambda item: item["id"])
    assert oldest["attempts"] == 5  # 4 refused while down, then delivered
    detail = (await client.get(f"/api/notifications/deliveries/{oldest['id']}")).json()
    assert [attempt["ok"] for attempt in detail["attempt_log"]] == [False] * 4 + [True]


async def test_the_notify_cron_of_a_scheduler_worker_delivers_a_failed_run(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.failed"], [hook])
    created = (
        await client.post(
            "/api/job-runs", json={"job_type": "diag.fail", "parameters": {"message": "boom"}}
        )
    ).json()
    await drain(services.settings)
    async with running_worker(services.settings, services.settings.queues.scheduler):
        await asyncio.wait_for(sink.webhook_arrived.wait(), 20)
    assert sink.webhooks[0].body["run_id"] == created["id"]
    assert sink.webhooks[0].signature_ok is True


async def test_concurrent_passes_send_every_delivery_exactly_once(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hooks = [await webhook_channel(client, sink, name=f"hook {i}") for i in range(3)]
    await rule(client, ["run.failed"], hooks)
    run_ids = [await finished_run(services, status=RunStatus.FAILED) for _ in range(20)]
    async with services.sessions.begin() as session:
        assert await interpret_facts(session, services.settings) == 20
        assert await route_events(session, 100) == 20
    # Three workers' passes at once, as overlapping cron runs on several hosts would.
    sent = await asyncio.gather(*(deliver_due(services) for _ in range(3)))
    await settle(services)

    assert sum(sent) <= 60
    received = [call.body["delivery_id"] for call in sink.webhooks]
    assert len(received) == len(set(received)) == 60  # the figure: duplicates = 0
    async with services.sessions() as session:
        rows = await session.execute(
            select(NotificationDelivery.id, NotificationDelivery.channel_id)
        )
        channel_of = {delivery_id: channel_id for delivery_id, channel_id in rows}
    for hook in hooks:
        in_channel = [
            call.body["run_id"]
            for call in sink.webhooks
            if channel_of[call.body["delivery_id"]] == hook
        ]
        assert in_channel == run_ids  # in order per rule and channel


async def test_a_run_lost_with_its_worker_alerts_as_lost(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.lost", "run.failed"], [hook])
    request = RunRequest(
        job_type="diag.progress",
        job_name="long check",
        queue=services.settings.queues.default,
        parameters={},
        triggered_by=TriggeredBy.API,
    )
    async with services.sessions.begin() as session:
        (run_id,) = await lifecycle.insert_runs(session, [request])
    assert await lifecycle.mark_running(services.sessions, run_id, "a-worker-that-died")
    # The controllable clock: its last heartbeat was a minute ago.
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(heartbeat_at=func.now() - timedelta(minutes=1))
        )
    assert (await reap_lost_runs(services)).failed == [run_id]
    await settle(services)
    await reap_lost_runs(services)
    await settle(services)

    assert [call.body["event"] for call in sink.webhooks] == ["run.lost"]
    assert "lost its worker: worker lost" in sink.webhooks[0].body["text"]

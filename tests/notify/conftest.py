"""Alert receivers on loopback and helpers to make channels, rules and finished runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import update

from executors.services import Services
from lab.alert_sink import AlertSink
from service.db.models import JobRunTarget, Outcome, RunStatus, TargetStatus, TriggeredBy
from service.notify.cycle import PassReport, notification_pass
from service.runs import lifecycle
from service.runs.lifecycle import RunEnd, RunRequest
from tests.conftest import WEBHOOK_SECRET


async def webhook_channel(client: httpx.AsyncClient, sink: AlertSink, **extra: Any) -> int:
    response = await client.post(
        "/api/notifications/channels",
        json={
            "name": extra.pop("name", "hook"),
            "type": "webhook",
            "is_global": True,
            "config": {
                "url": sink.hook_url("tests"),
                "secret": WEBHOOK_SECRET,
                "headers": {"X-Team": "nifi-ops"},
            },
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    channel_id: int = response.json()["id"]
    return channel_id


async def email_channel(client: httpx.AsyncClient, sink: AlertSink) -> int:
    response = await client.post(
        "/api/notifications/channels",
        json={
            "name": "mail",
            "type": "email",
            "is_global": True,
            "config": {
                "host": sink.host,
                "port": sink.smtp_port,
                "security": "none",
                "from_address": "opsjobs@example.net",
                "to": ["oncall@example.net"],
            },
        },
    )
    assert response.status_code == 201, response.text
    channel_id: int = response.json()["id"]
    return channel_id


async def rule(
    client: httpx.AsyncClient, events: Sequence[str], channel_ids: Sequence[int], **scope: Any
) -> int:
    response = await client.post(
        "/api/notifications/rules",
        json={
            "name": scope.pop("name", "rule"),
            "events": list(events),
            "channel_ids": list(channel_ids),
            "is_global": True,
            **scope,
        },
    )
    assert response.status_code == 201, response.text
    rule_id: int = response.json()["id"]
    return rule_id


async def finished_run(
    services: Services,
    *,
    status: RunStatus = RunStatus.COMPLETED,
    outcome: Outcome = Outcome.OK,
    template_id: int | None = None,
    schedule_id: int | None = None,
    targets: int = 0,
    failed_targets: int = 0,
    error: str | None = None,
    private_to: str | None = None,
) -> int:
    """A run taken and ended through the state machine, as a worker would."""
    request = RunRequest(
        job_type="diag.echo",
        job_name="nightly check",
        queue=services.settings.queues.default,
        parameters={},
        triggered_by=TriggeredBy.SCHEDULE if schedule_id else TriggeredBy.API,
        template_id=template_id,
        schedule_id=schedule_id,
        executed_by=private_to,
        private_to=private_to,
    )
    async with services.sessions.begin() as session:
        (run_id,) = await lifecycle.insert_runs(session, [request])
    start = await lifecycle.mark_running(services.sessions, run_id, "test-worker")
    assert start is not None
    if targets:
        await lifecycle.replace_targets(
            services.sessions, run_id, [(f"device-{i}", f"switch-{i:03d}") for i in range(targets)]
        )
        async with services.sessions.begin() as session:
            await session.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == run_id, JobRunTarget.position < failed_targets)
                .values(status=TargetStatus.FAILED.value, error="connection refused")
            )
            await session.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == run_id, JobRunTarget.position >= failed_targets)
                .values(status=TargetStatus.SUCCEEDED.value)
            )
    end = RunEnd(
        status=status,
        outcome=outcome.value if status is RunStatus.COMPLETED else Outcome.UNKNOWN.value,
        summary="done" if status is RunStatus.COMPLETED else error or "it broke",
        error=None if status is RunStatus.COMPLETED else error or "it broke",
    )
    assert await lifecycle.finish_run(
        services.sessions, run_id, start.attempt, end, has_targets=bool(targets)
    )
    return run_id


async def settle(services: Services, *, passes: int = 3) -> PassReport:
    """Run notification passes until one has nothing left to do (or ``passes`` ran)."""
    report = await notification_pass(services)
    for _ in range(passes - 1):
        if not (report.facts or report.routed or report.delivered):
            break
        report = await notification_pass(services)
    return report

"""Notification records age out: processed facts and settled events go, an event with a
delivery still to send stays however old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from executors.services import Services
from lab.alert_sink import AlertSink
from service.db.models import RunStatus
from service.db.notify_models import (
    NotificationAttempt,
    NotificationDelivery,
    NotificationEvent,
    NotificationOutbox,
)
from service.notify.retention import purge_notifications
from tests.notify.conftest import finished_run, rule, settle, webhook_channel


async def count(services: Services, model: type) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_old_facts_and_settled_events_go_open_deliveries_stay(
    client: httpx.AsyncClient, services: Services, sink: AlertSink
) -> None:
    hook = await webhook_channel(client, sink)
    await rule(client, ["run.failed"], [hook])
    for _ in range(3):
        await finished_run(services, status=RunStatus.FAILED)
    await settle(services)
    assert len(sink.webhooks) == 3
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with services.sessions.begin() as session:
        await session.execute(update(NotificationOutbox).values(created_at=long_ago))
        await session.execute(update(NotificationEvent).values(occurred_at=long_ago))
        still_open = await session.scalar(select(func.min(NotificationDelivery.id)))
        await session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == still_open)
            .values(status="pending")
        )

    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert await purge_notifications(services.sessions, cutoff, batch=2) == 3 + 2

    assert await count(services, NotificationOutbox) == 0
    assert await count(services, NotificationEvent) == 1
    assert await count(services, NotificationDelivery) == 1
    assert await count(services, NotificationAttempt) == 1  # the open delivery's own
    assert await purge_notifications(services.sessions, cutoff, batch=2) == 0

"""Sending deliveries: in order per rule and channel, retried with backoff, every try recorded.

Each pass claims, per rule and channel, the oldest deliveries not yet delivered or given
up — only when the oldest is due (its backoff passed) and no live lease holds any — and
sends them one after the other, stopping at the first failure. So a receiver that is down
holds back that rule's later messages, and once it answers again it gets them all, in
order. A claim is a lease (``sending`` until ``lease_until``): a worker that dies
mid-send leaves a delivery the next pass takes again (at least once; receivers dedupe on
``X-Opsjobs-Delivery``). Any number of workers may run passes at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, select, text, update

from service.db.engine import SessionFactory, single_statement
from service.db.notify_models import (
    DeliveryStatus,
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
)
from service.errors import OpsjobsError
from service.notify.channels import ChannelTarget, Message
from service.notify.events import run_link, schedule_link
from service.notify.senders import Senders, SendResult, channel_target
from service.secrets import KeyStore
from service.settings import NotifySettings, Settings

logger = logging.getLogger(__name__)

# The first ``per_group`` open deliveries of every rule and channel whose oldest one is due
# (backoff passed, or its holder's lease expired) and none is held by a live lease.
_CLAIM = text(
    """
WITH open AS (
    SELECT id,
           row_number() OVER w AS position,
           bool_or(status = 'sending' AND lease_until >= now()) OVER w AS busy,
           first_value(
               (status = 'pending' AND next_attempt_at <= now())
               OR (status = 'sending' AND lease_until < now())
           ) OVER w AS head_due
    FROM notification_deliveries
    WHERE status IN ('pending', 'sending')
    WINDOW w AS (PARTITION BY rule_id, channel_id ORDER BY id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
UPDATE notification_deliveries AS d
SET status = 'sending', lease_until = now() + make_interval(secs => :lease)
FROM open
WHERE d.id = open.id AND open.head_due AND NOT open.busy AND open.position <= :per_group
  -- Checked again on the row itself when a concurrent claim took it first (the CTE's
  -- snapshot is not): a delivery is never claimed twice.
  AND (d.status = 'pending' OR d.lease_until < now())
RETURNING d.id, d.event_id, d.rule_id, d.channel_id, d.attempts
"""
).bindparams(bindparam("lease"), bindparam("per_group"))
# Deliveries one pass sends in a row to one rule and channel, at most.
PER_GROUP = 50


class NotifyStores(Protocol):
    """What delivery needs: the worker's Services, or any holder of these three."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> SessionFactory: ...

    @property
    def keys(self) -> KeyStore: ...


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: int
    rule_id: int | None
    channel_id: int | None
    attempts: int


def retry_delay(settings: NotifySettings, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: exponential, capped."""
    return float(min(settings.retry_max, settings.retry_base * 2 ** max(0, attempts - 1)))


def message_of(event: NotificationEvent, public_url: str) -> Message:
    link = None
    if event.run_id is not None:
        link = run_link(public_url, event.run_id)
    elif event.schedule_id is not None:
        link = schedule_link(public_url, event.schedule_id)
    return Message(
        event_id=event.id,
        event=event.event,
        severity=event.severity,
        title=event.title,
        text=event.message,
        subject=event.subject,
        occurred_at=event.occurred_at,
        since=event.since,
        link=link,
        run_id=event.run_id,
        schedule_id=event.schedule_id,
        template_id=event.template_id,
        job_type=event.job_type,
        details=event.details,
    )


async def deliver_due(stores: NotifyStores) -> int:
    """Send every claimable delivery once; returns how many were sent successfully."""
    settings = stores.settings.notify
    lease = lease_seconds(settings)
    async with stores.sessions.begin() as session:
        claimed = [
            Claimed(row.id, row.event_id, row.rule_id, row.channel_id, row.attempts)
            for row in await session.execute(_CLAIM, {"lease": lease, "per_group": PER_GROUP})
        ]
    if not claimed:
        return 0
    async with stores.sessions() as session:
        events = {
            event.id: event
            for event in await session.scalars(
                select(NotificationEvent).where(
                    NotificationEvent.id.in_({item.event_id for item in claimed})
                )
            )
        }
        channels = {
            channel.id: channel
            for channel in await session.scalars(
                select(NotificationChannel).where(
                    NotificationChannel.id.in_({item.channel_id for item in claimed})
                )
            )
        }
        rules = {
            rule.id: rule
            for rule in await session.scalars(
                select(NotificationRule).where(
                    NotificationRule.id.in_({item.rule_id for item in claimed})
                )
            )
        }
    groups: dict[tuple[int | None, int | None], list[Claimed]] = {}
    for item in sorted(claimed, key=lambda item: item.id):
        groups.setdefault((item.rule_id, item.channel_id), []).append(item)
    limit = asyncio.Semaphore(settings.max_in_flight)
    async with Senders(settings.timeout) as senders:
        targets: dict[int, ChannelTarget] = {}

        async def send(item: Claimed) -> SendResult:
            event = events[item.event_id]
            channel = channels.get(item.channel_id) if item.channel_id else None
            rule = rules.get(item.rule_id) if item.rule_id else None
            if channel is None:
                return SendResult(ok=False, error="channel deleted")
            target = targets.get(channel.id)
            if target is None:
                try:
                    target = await channel_target(stores.sessions, stores.keys, channel)
                except OpsjobsError as exc:
                    return SendResult(ok=False, error=str(exc))
                # Decrypted once per pass, not once per message.
                targets[channel.id] = target
            return await senders.send(
                target,
                message_of(event, stores.settings.api.public_url),
                delivery_id=item.id,
                rule={"id": rule.id, "name": rule.name} if rule else None,
            )

        async def in_order(items: list[Claimed]) -> int:
            """One rule and channel: in order, stopping at the first failure. A try is
            recorded while the next message is on its way (one record in flight)."""
            sent = 0
            recording: asyncio.Task[None] | None = None
            async with limit:
                for index, item in enumerate(items):
                    result = await send(item)
                    rest = [later.id for later in items[index + 1 :]]
                    final = item.channel_id is None or item.channel_id not in channels
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(
                        _record(stores, item, events[item.event_id], result, rest, final=final)
                    )
                    if not result.ok:
                        break
                    sent += 1
                if recording is not None:
                    await recording
            return sent

        counts = await asyncio.gather(*(in_order(items) for items in groups.values()))
    return sum(counts)


def lease_seconds(settings: NotifySettings) -> float:
    """How long a claim holds a delivery before another pass may take it again."""
    return settings.timeout * 2 + 5


async def _record(
    stores: NotifyStores,
    item: Claimed,
    event: NotificationEvent,
    result: SendResult,
    rest: list[int],
    *,
    final: bool = False,
) -> None:
    """Record one try; the deliveries claimed behind it keep their lease while it went well
    and go back to waiting (untried) when it did not."""
    settings = stores.settings.notify
    attempts = item.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "status_code": result.status_code,
        "last_error": result.error,
        "lease_until": None,
    }
    if result.ok:
        values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=datetime.now(UTC))
    else:
        retry_at = datetime.now(UTC) + timedelta(seconds=retry_delay(settings, attempts))
        gave_up = final or retry_at - event.occurred_at > timedelta(seconds=settings.give_up_after)
        values["status"] = (DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING).value
        values["next_attempt_at"] = retry_at
        logger.warning(
            "delivery %s failed (attempt %s): %s",
            item.id,
            attempts,
            result.error,
            extra={"delivery_id": item.id, "channel_id": item.channel_id, "gave_up": gave_up},
        )
    # One autocommit statement: the attempt, the delivery, and those claimed behind it.
    statement = (
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == item.id,
            NotificationDelivery.status == DeliveryStatus.SENDING.value,
        )
        .values(**values)
        .add_cte(
            insert(NotificationAttempt)
            .values(
                delivery_id=item.id,
                ok=result.ok,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
            )
            .cte("attempt")
        )
    )
    if rest:
        waiting = update(NotificationDelivery).where(
            NotificationDelivery.id.in_(rest),
            NotificationDelivery.status == DeliveryStatus.SENDING.value,
        )
        if result.ok:
            lease = timedelta(seconds=lease_seconds(settings))
            waiting = waiting.values(lease_until=func.now() + lease)
        else:
            waiting = waiting.values(status=DeliveryStatus.PENDING.value, lease_until=None)
        statement = statement.add_cte(waiting.cte("waiting"))
    async with single_statement(stores.sessions) as conn:
        await conn.execute(statement)

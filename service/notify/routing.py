"""Rules turn events into deliveries: one per event, rule and channel, at most once.

A rule matches an event it lists whose job type, template and schedule are in its scope
(a scope left out is "all"); an event about a private subject (a private run, schedule or
template) is heard only by its owner's rules, whether they are global or private.
Events are routed in id order under the interpreter's lock, so deliveries of one rule and
channel are numbered in the order their events happened — the order they are sent in.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.notify_models import (
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
)


def rule_matches(rule: NotificationRule, event: NotificationEvent) -> bool:
    """Whether ``rule`` asks for ``event``; pure."""
    if event.event not in rule.events:
        return False
    if rule.job_types is not None and event.job_type not in rule.job_types:
        return False
    if rule.template_ids is not None and event.template_id not in rule.template_ids:
        return False
    if rule.schedule_ids is not None and event.schedule_id not in rule.schedule_ids:
        return False
    return event.is_global or event.owner == rule.owner


async def route_events(session: AsyncSession, limit: int) -> int:
    """Create the deliveries of unrouted events (caller's transaction); returns how many
    events were routed."""
    events: Sequence[NotificationEvent] = (
        await session.scalars(
            select(NotificationEvent)
            .where(text("NOT notification_events.routed"))
            .order_by(NotificationEvent.id)
            .limit(limit)
        )
    ).all()
    if not events:
        return 0
    rules = (
        await session.scalars(
            select(NotificationRule).where(NotificationRule.is_active).order_by(NotificationRule.id)
        )
    ).all()
    channel_ids = set(await session.scalars(select(NotificationChannel.id)))
    rows = [
        {"event_id": event.id, "rule_id": rule.id, "channel_id": channel_id}
        for event in events
        for rule in rules
        if rule_matches(rule, event)
        for channel_id in rule.channel_ids
        if channel_id in channel_ids
    ]
    if rows:
        await session.execute(
            pg_insert(NotificationDelivery)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_notification_deliveries")
        )
    await session.execute(
        update(NotificationEvent)
        .where(NotificationEvent.id.in_([event.id for event in events]))
        .values(routed=True)
    )
    return len(events)

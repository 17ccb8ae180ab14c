"""Reading deliveries, for the API and the console: who may see which, and their attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, join, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.notify_models import (
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
)


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries to list; ``viewer`` None lists every one (an admin)."""

    viewer: str | None = None
    statuses: Sequence[str] = ()
    events: Sequence[str] = ()
    rule_id: int | None = None
    channel_id: int | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    event_id: int
    event: str
    title: str
    severity: str
    run_id: int | None
    schedule_id: int | None
    rule_id: int | None
    rule_name: str | None
    channel_id: int | None
    channel_name: str | None
    status: str
    attempts: int
    last_error: str | None
    status_code: int | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


def _conditions(where: DeliveryFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.viewer is not None:
        conditions.append(or_(NotificationRule.is_global, NotificationRule.owner == where.viewer))
        # What a delivery says of its event (a private run's summary) is its owner's.
        conditions.append(or_(NotificationEvent.is_global, NotificationEvent.owner == where.viewer))
    if where.statuses:
        conditions.append(NotificationDelivery.status.in_(where.statuses))
    if where.events:
        conditions.append(NotificationEvent.event.in_(where.events))
    if where.rule_id is not None:
        conditions.append(NotificationDelivery.rule_id == where.rule_id)
    if where.channel_id is not None:
        conditions.append(NotificationDelivery.channel_id == where.channel_id)
    if where.run_id is not None:
        conditions.append(NotificationEvent.run_id == where.run_id)
    return conditions


# Deliveries with their event, rule and channel (rules and channels may be gone).
_DELIVERIES = (
    join(
        NotificationDelivery,
        NotificationEvent,
        NotificationEvent.id == NotificationDelivery.event_id,
    )
    .outerjoin(NotificationRule, NotificationRule.id == NotificationDelivery.rule_id)
    .outerjoin(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
)


async def list_deliveries(
    session: AsyncSession, where: DeliveryFilter, *, offset: int, limit: int
) -> tuple[list[DeliveryRow], int]:
    """One page of deliveries, newest first, and how many match."""
    conditions = _conditions(where)
    total: int = (
        await session.scalar(select(func.count()).select_from(_DELIVERIES).where(*conditions)) or 0
    )
    return await _rows(session, conditions, offset=offset, limit=limit), total


async def get_delivery(
    session: AsyncSession, delivery_id: int, viewer: str | None
) -> DeliveryRow | None:
    """One delivery the viewer may see (``viewer`` None: any)."""
    conditions = [NotificationDelivery.id == delivery_id, *_conditions(DeliveryFilter(viewer))]
    found = await _rows(session, conditions, offset=0, limit=1)
    return found[0] if found else None


async def _rows(
    session: AsyncSession, conditions: list[ColumnElement[bool]], *, offset: int, limit: int
) -> list[DeliveryRow]:
    rows = await session.execute(
        select(
            NotificationDelivery.id,
            NotificationDelivery.event_id,
            NotificationEvent.event,
            NotificationEvent.title,
            NotificationEvent.severity,
            NotificationEvent.run_id,
            NotificationEvent.schedule_id,
            NotificationDelivery.rule_id,
            NotificationRule.name.label("rule_name"),
            NotificationDelivery.channel_id,
            NotificationChannel.name.label("channel_name"),
            NotificationDelivery.status,
            NotificationDelivery.attempts,
            NotificationDelivery.last_error,
            NotificationDelivery.status_code,
            NotificationDelivery.next_attempt_at,
            NotificationDelivery.created_at,
            NotificationDelivery.delivered_at,
        )
        .select_from(_DELIVERIES)
        .where(*conditions)
        .order_by(NotificationDelivery.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [DeliveryRow(**row._mapping) for row in rows]


async def delivery_attempts(session: AsyncSession, delivery_id: int) -> list[NotificationAttempt]:
    """Every try of a delivery, oldest first."""
    return list(
        await session.scalars(
            select(NotificationAttempt)
            .where(NotificationAttempt.delivery_id == delivery_id)
            .order_by(NotificationAttempt.id)
        )
    )

"""``/api/notifications/deliveries``: every message sent or to be sent, with its attempts."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from service.api.auth import NotificationsReader
from service.api.deps import SessionDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.notify_models import DeliveryStatus
from service.db.paging import Page
from service.errors import InvalidInput, NotFound
from service.notify.events import EventName
from service.notify.listing import DeliveryFilter, delivery_attempts, get_delivery, list_deliveries

router = APIRouter(prefix="/api/notifications/deliveries", tags=["notifications"])


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]


def _listed(raw: str | None, allowed: set[str], field: str) -> list[str]:
    values = [value.strip() for value in (raw or "").split(",") if value.strip()]
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise InvalidInput(
            f"unknown {field}: {', '.join(unknown)}",
            details=[{"loc": ["query", field], "msg": f"one of {', '.join(sorted(allowed))}"}],
        )
    return values


@router.get("", response_model=Page[DeliveryOut])
async def list_notification_deliveries(
    caller: NotificationsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
    status: Annotated[str | None, Query(max_length=200)] = None,
    event: Annotated[str | None, Query(max_length=500)] = None,
    rule_id: int | None = None,
    channel_id: int | None = None,
    run_id: int | None = None,
) -> Page[DeliveryOut]:
    """Newest first; comma-separated ``status`` and ``event`` filters."""
    where = DeliveryFilter(
        viewer=None if caller.is_admin else caller.username,
        statuses=_listed(status, {s.value for s in DeliveryStatus}, "status"),
        events=_listed(event, {e.value for e in EventName}, "event"),
        rule_id=rule_id,
        channel_id=channel_id,
        run_id=run_id,
    )
    rows, total = await list_deliveries(
        session, where, offset=(page - 1) * page_size, limit=page_size
    )
    return Page[DeliveryOut](
        items=[DeliveryOut.model_validate(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.get("/{delivery_id}", response_model=DeliveryDetailOut)
async def get_notification_delivery(
    delivery_id: int, caller: NotificationsReader, session: SessionDep
) -> DeliveryDetailOut:
    row = await get_delivery(session, delivery_id, None if caller.is_admin else caller.username)
    if row is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    attempts = await delivery_attempts(session, delivery_id)
    return DeliveryDetailOut(
        **DeliveryOut.model_validate(row).model_dump(),
        attempt_log=[AttemptOut.model_validate(attempt) for attempt in attempts],
    )

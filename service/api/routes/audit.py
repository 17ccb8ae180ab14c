"""``/api/audit`` (admins): who did what to which resource, when and from where."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, func, select

from service.api.auth import AuditReader
from service.api.deps import SessionDep
from service.api.schemas import Page
from service.db.security_models import AuditEvent

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str | None
    action: str
    resource_type: str
    resource_id: str | None
    source_ip: str | None
    details: dict[str, Any]


@router.get("", response_model=Page[AuditEventOut])
async def list_events(
    caller: AuditReader,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEventOut]:
    """Newest first, optionally filtered by actor, action and resource type."""
    conditions: list[ColumnElement[bool]] = []
    if actor:
        conditions.append(AuditEvent.actor == actor)
    if action:
        conditions.append(AuditEvent.action == action)
    if resource_type:
        conditions.append(AuditEvent.resource_type == resource_type)
    total = (
        await session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    )
    rows = await session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page[AuditEventOut](
        items=[AuditEventOut.model_validate(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )

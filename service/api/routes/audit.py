"""``/api/audit`` (admins): who did what to which resource, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement

from service.api.auth import AuditReader
from service.api.deps import SessionDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.paging import Page, paginate
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
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
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
    return await paginate(
        session,
        AuditEvent,
        where=conditions,
        order_by=[AuditEvent.at.desc(), AuditEvent.id.desc()],
        page=page,
        page_size=page_size,
        to_item=AuditEventOut.model_validate,
    )

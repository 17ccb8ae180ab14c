"""The audit trail: one row per change, run, cancel, purge, token or credential action."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.paging import Page, paginate
from service.db.security_models import AuditEvent


@dataclass(frozen=True)
class AuditEntry:
    """An audit row whose resource id is known only once the change is written."""

    actor: str | None
    action: str
    resource_type: str
    source_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def columns(self, resource_id: object = None) -> dict[str, Any]:
        """The row's values (``audit_events`` column → value)."""
        return {
            "actor": self.actor,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": None if resource_id is None else str(resource_id),
            "source_ip": self.source_ip,
            "details": self.details,
        }


def source_ip(request: Request | None) -> str | None:
    return request.client.host if request is not None and request.client else None


def record_audit(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str,
    resource_type: str,
    resource_id: object = None,
    request: Request | None = None,
    client_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction (it commits with the change itself).

    The source address is ``client_ip`` when given, else the request's client.
    """
    address = client_ip if client_ip is not None else source_ip(request)
    entry = AuditEntry(actor, action, resource_type, address, details or {})
    session.add(AuditEvent(**entry.columns(resource_id)))


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


async def list_audit(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str | None,
    resource_type: str | None,
    page: int,
    page_size: int,
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

"""``/api/audit`` (admins): who did what to which resource, when and from where."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.access.audit import AuditEventOut, list_audit
from service.api.auth import AuditReader
from service.api.deps import SessionDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.paging import Page

router = APIRouter(prefix="/api/audit", tags=["audit"])


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
    return await list_audit(
        session,
        actor=actor,
        action=action,
        resource_type=resource_type,
        page=page,
        page_size=page_size,
    )

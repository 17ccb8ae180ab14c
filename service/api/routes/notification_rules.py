"""``/api/notifications/rules``: which events, for which job types, templates and schedules
(left out: all the owner may see), to which channels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import authorize, get_visible, require_owner, visible_to
from service.access.principals import Principal
from service.access.resources import ResourceKind, ResourceRef
from service.api.auth import NotificationsReader, NotificationsWriter
from service.api.deps import SessionDep
from service.api.ownership import body_uses
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.notify_models import NotificationRule
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict, refuse_nulls
from service.errors import Conflict
from service.notify.events import EventName

router = APIRouter(prefix="/api/notifications/rules", tags=["notifications"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(max_length=1000)]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    events: Annotated[list[EventName], Field(min_length=1)]
    channel_ids: Annotated[Ids, Field(min_length=1), ResourceRef(ResourceKind.NOTIFICATION_CHANNEL)]
    job_types: (
        Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)] | None
    ) = None
    template_ids: Ids | None = None
    schedule_ids: Ids | None = None
    is_global: bool = False
    is_active: bool = True


class RuleUpdate(BaseModel):
    """Fields left out keep their value; a scope sent as ``null`` widens it to all."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    events: Annotated[list[EventName], Field(min_length=1)] | None = None
    channel_ids: Annotated[
        Annotated[Ids, Field(min_length=1)] | None,
        ResourceRef(ResourceKind.NOTIFICATION_CHANNEL),
    ] = None
    job_types: (
        Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)] | None
    ) = None
    template_ids: Ids | None = None
    schedule_ids: Ids | None = None
    is_global: bool | None = None
    is_active: bool | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    events: list[str]
    channel_ids: list[int]
    job_types: list[str] | None
    template_ids: list[int] | None
    schedule_ids: list[int] | None
    is_global: bool
    is_active: bool
    owner: str | None
    created_at: datetime
    updated_at: datetime


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a notification rule named {name!r} already exists in this scope")


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready column values: event names as strings, duplicates dropped in order."""
    stored = dict(values)
    for name in ("events", "channel_ids", "job_types", "template_ids", "schedule_ids"):
        if stored.get(name) is not None:
            stored[name] = list(
                dict.fromkeys(str(v) if name == "events" else v for v in stored[name])
            )
    return stored


@router.get("", response_model=Page[RuleOut])
async def list_rules(
    caller: NotificationsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[RuleOut]:
    return await paginate(
        session,
        NotificationRule,
        where=[visible_to(NotificationRule, caller)],
        order_by=[NotificationRule.name, NotificationRule.id],
        page=page,
        page_size=page_size,
        to_item=RuleOut.model_validate,
    )


@router.post("", status_code=201, response_model=RuleOut)
async def create_rule(
    body: RuleIn, caller: NotificationsWriter, request: Request, session: SessionDep
) -> RuleOut:
    await authorize(session, caller, body_uses(body))
    row = NotificationRule(**_stored(body.model_dump()), owner=caller.username)
    session.add(row)
    await flush_or_conflict(session, _name_taken(body.name))
    _audit(session, caller, "create", row, request)
    await session.commit()
    await session.refresh(row)
    return RuleOut.model_validate(row)


@router.get("/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: int, caller: NotificationsReader, session: SessionDep) -> RuleOut:
    return RuleOut.model_validate(
        await get_visible(session, NotificationRule, rule_id, caller, label="notification rule")
    )


@router.patch("/{rule_id}", response_model=RuleOut)
async def update_rule(
    rule_id: int,
    body: RuleUpdate,
    caller: NotificationsWriter,
    request: Request,
    session: SessionDep,
) -> RuleOut:
    row = await get_visible(
        session, NotificationRule, rule_id, caller, label="notification rule", for_update=True
    )
    require_owner(caller, row, label="notification rule")
    changes = _stored(body.model_dump(exclude_unset=True))
    refuse_nulls(NotificationRule, changes)
    if changes.get("channel_ids"):
        await authorize(session, caller, body_uses(body, ["channel_ids"]))
    for name, value in changes.items():
        setattr(row, name, value)
    await flush_or_conflict(session, _name_taken(row.name))
    _audit(session, caller, "update", row, request, fields=sorted(changes))
    await session.commit()
    await session.refresh(row)
    return RuleOut.model_validate(row)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(
    rule_id: int, caller: NotificationsWriter, request: Request, session: SessionDep
) -> Response:
    row = await get_visible(
        session, NotificationRule, rule_id, caller, label="notification rule", for_update=True
    )
    require_owner(caller, row, label="notification rule")
    _audit(session, caller, "delete", row, request)
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)


def _audit(
    session: AsyncSession,
    caller: Principal,
    action: str,
    row: NotificationRule,
    request: Request,
    *,
    fields: list[str] | None = None,
) -> None:
    details: dict[str, Any] = {"name": row.name}
    if fields is not None:
        details["fields"] = fields
    record_audit(
        session,
        actor=caller.username,
        action=action,
        resource_type="notification_rule",
        resource_id=row.id,
        request=request,
        details=details,
    )

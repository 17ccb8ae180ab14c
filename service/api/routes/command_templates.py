"""``/api/command-templates``: Jinja2 command templates for ``run_commands``, versioned.

Every content a template has had is kept: creating one stores version 1, each change of
its content stores the next version. A template that does not parse is refused (422
naming the line); it renders in a sandbox when a run uses it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from service.access.audit import record_audit
from service.access.ownership import get_visible, require_owner, visible_to
from service.api.auth import (
    TemplatesDeleter,
    TemplatesReader,
    TemplatesWriter,
)
from service.api.deps import SessionDep
from service.db.device_models import CommandTemplate, CommandTemplateVersion
from service.db.paging import Page
from service.db.patching import flush_or_conflict, refuse_nulls
from service.devices.command_templates import MAX_TEMPLATE_CHARS, validate_template
from service.errors import Conflict

router = APIRouter(prefix="/api/command-templates", tags=["command-templates"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
Content = Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)]
Note = Annotated[str, Field(max_length=10_000)]


class CommandTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=10_000)
    content: Content
    is_global: bool = True


class CommandTemplateUpdate(BaseModel):
    """A new ``content`` makes a new version; ``change_note`` says why."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    content: Content | None = None
    change_note: Note | None = None


class CommandTemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    content: str
    version: int
    is_global: bool
    owner: str | None
    created_at: datetime
    updated_at: datetime


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    content: str
    change_note: str | None
    created_by: str | None
    created_at: datetime


def _conflict(name: str) -> Conflict:
    return Conflict(f"a command template named {name!r} already exists in this scope")


@router.get("", response_model=Page[CommandTemplateOut])
async def list_command_templates(
    caller: TemplatesReader,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[CommandTemplateOut]:
    condition = visible_to(CommandTemplate, caller)
    total = await session.scalar(select(func.count()).select_from(CommandTemplate).where(condition))
    rows = await session.scalars(
        select(CommandTemplate)
        .where(condition)
        .order_by(CommandTemplate.name, CommandTemplate.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    total = total or 0
    return Page[CommandTemplateOut](
        items=[CommandTemplateOut.model_validate(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.post("", status_code=201, response_model=CommandTemplateOut)
async def create_command_template(
    body: CommandTemplateIn, caller: TemplatesWriter, request: Request, session: SessionDep
) -> CommandTemplateOut:
    """Save a template as version 1; a syntax error is a 422 naming the line."""
    validate_template(body.content)
    row = CommandTemplate(
        name=body.name,
        description=body.description,
        content=body.content,
        version=1,
        is_global=body.is_global,
        owner=caller.username,
    )
    session.add(row)
    await flush_or_conflict(session, _conflict(body.name))
    session.add(
        CommandTemplateVersion(
            template_id=row.id, version=1, content=body.content, created_by=caller.username
        )
    )
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="command_template",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    return CommandTemplateOut.model_validate(row)


@router.get("/{template_id}", response_model=CommandTemplateOut)
async def get_command_template(
    template_id: int, caller: TemplatesReader, session: SessionDep
) -> CommandTemplateOut:
    return CommandTemplateOut.model_validate(
        await get_visible(session, CommandTemplate, template_id, caller, label="command template")
    )


@router.patch("/{template_id}", response_model=CommandTemplateOut)
async def update_command_template(
    template_id: int,
    body: CommandTemplateUpdate,
    caller: TemplatesWriter,
    request: Request,
    session: SessionDep,
) -> CommandTemplateOut:
    """Change a template; new content becomes the next version (old ones are kept)."""
    row = await get_visible(
        session, CommandTemplate, template_id, caller, label="command template", for_update=True
    )
    require_owner(caller, row, label="command template")
    changes = body.model_dump(exclude_unset=True)
    note = changes.pop("change_note", None)
    content = changes.pop("content", None)
    refuse_nulls(CommandTemplate, changes)
    for name, value in changes.items():
        setattr(row, name, value)
    if content is not None and content != row.content:
        validate_template(content)
        row.content = content
        row.version += 1
        session.add(
            CommandTemplateVersion(
                template_id=row.id,
                version=row.version,
                content=content,
                change_note=note,
                created_by=caller.username,
            )
        )
        changes["content"] = True
    await flush_or_conflict(session, _conflict(row.name))
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="command_template",
        resource_id=row.id,
        request=request,
        details={"fields": sorted(changes), "version": row.version},
    )
    # Read back while the row lock is held: after the commit a concurrent edit may already
    # have numbered the next version, and the answer must name the one this edit wrote.
    await session.refresh(row)
    updated = CommandTemplateOut.model_validate(row)
    await session.commit()
    return updated


@router.get("/{template_id}/versions", response_model=list[VersionOut])
async def list_versions(
    template_id: int, caller: TemplatesReader, session: SessionDep
) -> list[VersionOut]:
    """Every version of the template, newest first."""
    await get_visible(session, CommandTemplate, template_id, caller, label="command template")
    rows = await session.scalars(
        select(CommandTemplateVersion)
        .where(CommandTemplateVersion.template_id == template_id)
        .order_by(CommandTemplateVersion.version.desc())
    )
    return [VersionOut.model_validate(row) for row in rows]


@router.delete("/{template_id}", status_code=204)
async def delete_command_template(
    template_id: int, caller: TemplatesDeleter, request: Request, session: SessionDep
) -> Response:
    row = await get_visible(session, CommandTemplate, template_id, caller, label="command template")
    require_owner(caller, row, label="command template")
    await session.delete(row)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="command_template",
        resource_id=template_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)

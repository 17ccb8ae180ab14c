"""``/api/maintenance-windows``: change freezes, one-off or recurring, and what they cover.

A window is ``{name, start_at, end_at}`` or ``{name, cron_expression, duration_minutes,
timezone}``, scoped by ``template_ids``, ``schedule_ids``, ``job_types`` (left out: all)
or by ``inventory_id`` (its devices are skipped inside runs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import authorize, get_visible, require_owner, visible_to
from service.access.principals import Principal
from service.access.resources import ResourceKind, ResourceRef
from service.api.auth import MaintenanceReader, MaintenanceWriter
from service.api.deps import SessionDep, WindowsDep
from service.api.ownership import body_uses
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.notify_models import MaintenanceWindow
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict
from service.errors import Conflict
from service.scheduling.windows import Window, recurrence_spec

router = APIRouter(prefix="/api/maintenance-windows", tags=["maintenance-windows"])

Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(max_length=1000)]
JobTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=100)
]
MAX_DURATION_MINUTES = 31 * 24 * 60


class WindowFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_at: datetime | None = None
    end_at: datetime | None = None
    cron_expression: str | None = Field(default=None, min_length=1, max_length=255)
    duration_minutes: int | None = Field(default=None, ge=1, le=MAX_DURATION_MINUTES)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    template_ids: Ids | None = None
    schedule_ids: Ids | None = None
    job_types: JobTypes | None = None
    inventory_id: Annotated[int | None, ResourceRef(ResourceKind.INVENTORY)] = Field(
        default=None, ge=1, le=2**31 - 1
    )
    is_global: bool = True

    @model_validator(mode="after")
    def _one_off_or_recurring(self) -> WindowFields:
        one_off = self.start_at is not None or self.end_at is not None
        recurring = self.cron_expression is not None or self.duration_minutes is not None
        if one_off == recurring:
            raise ValueError(
                "give start_at and end_at (one-off) or cron_expression and duration_minutes "
                "(recurring)"
            )
        if one_off:
            if self.start_at is None or self.end_at is None:
                raise ValueError("a one-off window needs both start_at and end_at")
            if self.start_at.tzinfo is None or self.end_at.tzinfo is None:
                raise ValueError("start_at and end_at need a UTC offset")
            if self.end_at <= self.start_at:
                raise ValueError("end_at must be after start_at")
        elif self.cron_expression is None or self.duration_minutes is None:
            raise ValueError("a recurring window needs cron_expression and duration_minutes")
        return self


class WindowIn(WindowFields):
    name: str = Field(min_length=1, max_length=255)


class WindowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    start_at: datetime | None
    end_at: datetime | None
    cron_expression: str | None
    duration_minutes: int | None
    timezone: str
    template_ids: list[int] | None
    schedule_ids: list[int] | None
    job_types: list[str] | None
    inventory_id: int | None
    is_global: bool
    owner: str | None
    created_at: datetime
    updated_at: datetime
    # Whether the window is open now.
    active: bool = False


def _out(row: MaintenanceWindow) -> WindowOut:
    out = WindowOut.model_validate(row)
    out.active = Window.of(row).is_open(datetime.now(UTC))
    return out


async def _checked(session: AsyncSession, caller: Principal, body: WindowFields) -> dict[str, Any]:
    values = body.model_dump()
    if body.cron_expression is not None:
        recurrence_spec(body.cron_expression, body.timezone)  # 422 naming the field
    await authorize(session, caller, body_uses(body))
    return values


def _name_taken(name: str) -> Conflict:
    return Conflict(f"could not save maintenance window {name!r}")


@router.get("", response_model=Page[WindowOut])
async def list_windows(
    caller: MaintenanceReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[WindowOut]:
    return await paginate(
        session,
        MaintenanceWindow,
        where=[visible_to(MaintenanceWindow, caller)],
        order_by=[MaintenanceWindow.id],
        page=page,
        page_size=page_size,
        to_item=_out,
    )


@router.post("", status_code=201, response_model=WindowOut)
async def create_window(
    body: WindowIn,
    caller: MaintenanceWriter,
    request: Request,
    session: SessionDep,
    windows: WindowsDep,
) -> WindowOut:
    row = MaintenanceWindow(**await _checked(session, caller, body), owner=caller.username)
    session.add(row)
    await flush_or_conflict(session, _name_taken(body.name))
    _audit(session, caller, "create", row, request)
    await session.commit()
    windows.forget()
    await session.refresh(row)
    return _out(row)


@router.get("/{window_id}", response_model=WindowOut)
async def get_window(window_id: int, caller: MaintenanceReader, session: SessionDep) -> WindowOut:
    return _out(
        await get_visible(session, MaintenanceWindow, window_id, caller, label="maintenance window")
    )


@router.put("/{window_id}", response_model=WindowOut)
async def replace_window(
    window_id: int,
    body: WindowIn,
    caller: MaintenanceWriter,
    request: Request,
    session: SessionDep,
    windows: WindowsDep,
) -> WindowOut:
    """Replace a window whole (a one-off may become recurring and back)."""
    row = await get_visible(
        session, MaintenanceWindow, window_id, caller, label="maintenance window", for_update=True
    )
    require_owner(caller, row, label="maintenance window")
    for name, value in (await _checked(session, caller, body)).items():
        setattr(row, name, value)
    await flush_or_conflict(session, _name_taken(body.name))
    _audit(session, caller, "update", row, request)
    await session.commit()
    windows.forget()
    await session.refresh(row)
    return _out(row)


@router.delete("/{window_id}", status_code=204)
async def delete_window(
    window_id: int,
    caller: MaintenanceWriter,
    request: Request,
    session: SessionDep,
    windows: WindowsDep,
) -> Response:
    row = await get_visible(
        session, MaintenanceWindow, window_id, caller, label="maintenance window", for_update=True
    )
    require_owner(caller, row, label="maintenance window")
    _audit(session, caller, "delete", row, request)
    await session.delete(row)
    await session.commit()
    windows.forget()
    return Response(status_code=204)


def _audit(
    session: AsyncSession, caller: Principal, action: str, row: MaintenanceWindow, request: Request
) -> None:
    record_audit(
        session,
        actor=caller.username,
        action=action,
        resource_type="maintenance_window",
        resource_id=row.id,
        request=request,
        details={"name": row.name},
    )

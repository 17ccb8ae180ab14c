"""``/api/inventories``: saved condition trees, and previews of the devices they select.

A tree outside the grammar is refused when it is saved (422 naming the item, e.g.
``root.items[2].operator``). A preview resolves through Nautobot, takes device records
from the cache while it is fresh and says whether it did; ``refresh=true`` bypasses it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from service.access.audit import record_audit
from service.access.ownership import get_visible, require_owner, visible_to
from service.api.auth import (
    TemplatesDeleter,
    TemplatesReader,
    TemplatesWriter,
)
from service.api.deps import RedisDep, SessionDep, SettingsDep
from service.db.device_models import Inventory
from service.db.paging import Page
from service.db.patching import flush_or_conflict, refuse_nulls
from service.devices.targeting import DeviceResolver, Resolution
from service.errors import Conflict
from service.inventory.conditions import parse_inventory_tree
from service.inventory.device import Device
from service.inventory.nautobot import NautobotClient

router = APIRouter(prefix="/api/inventories", tags=["inventories"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
RefreshQuery = Annotated[bool, Query(description="bypass the device cache")]


def get_resolver(request: Request, settings: SettingsDep, redis: RedisDep) -> DeviceResolver:
    """A resolver over the app's Nautobot client and the device cache."""
    client = cast(NautobotClient, request.state.nautobot)
    return DeviceResolver(client, redis, settings.nautobot)


ResolverDep = Annotated[DeviceResolver, Depends(get_resolver)]


class InventoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=10_000)
    is_global: bool = True
    tree: Any = Field(description="the version-2 condition tree (root, or [{version, tree}])")


class InventoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    tree: Any = None


class InventoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    is_global: bool
    owner: str | None
    tree: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tree: Any


class DeviceOut(BaseModel):
    id: str
    name: str
    primary_ip4: str | None
    platform: str | None
    network_driver: str | None
    location: str | None
    role: str | None
    status: str | None
    tags: list[str]

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls(
            id=device.id,
            name=device.name,
            primary_ip4=device.primary_ip4,
            platform=device.platform,
            network_driver=device.network_driver,
            location=device.location,
            role=device.role,
            status=device.status,
            tags=list(device.tags),
        )


class PreviewOut(BaseModel):
    count: int
    devices: list[DeviceOut]
    cached: bool = Field(description="whether device records came from the device cache")
    cache_age_seconds: float | None

    @classmethod
    def of(cls, resolution: Resolution) -> PreviewOut:
        return cls(
            count=len(resolution.devices),
            devices=[DeviceOut.of(device) for device in resolution.devices],
            cached=resolution.cached,
            cache_age_seconds=(
                None if resolution.cache_age is None else round(resolution.cache_age, 3)
            ),
        )


def _stored_tree(raw: Any) -> dict[str, Any]:
    tree: dict[str, Any] = parse_inventory_tree(raw).model_dump(by_alias=True, exclude_none=True)
    return tree


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an inventory named {name!r} already exists in this scope")


@router.get("", response_model=Page[InventoryOut])
async def list_inventories(
    caller: TemplatesReader,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[InventoryOut]:
    condition = visible_to(Inventory, caller)
    total = await session.scalar(select(func.count()).select_from(Inventory).where(condition))
    rows = await session.scalars(
        select(Inventory)
        .where(condition)
        .order_by(Inventory.name, Inventory.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    total = total or 0
    return Page[InventoryOut](
        items=[InventoryOut.model_validate(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )


@router.post("", status_code=201, response_model=InventoryOut)
async def create_inventory(
    body: InventoryIn, caller: TemplatesWriter, request: Request, session: SessionDep
) -> InventoryOut:
    """Save an inventory; a tree outside the grammar is a 422 naming the item."""
    row = Inventory(
        name=body.name,
        description=body.description,
        is_global=body.is_global,
        owner=caller.username,
        tree=_stored_tree(body.tree),
    )
    session.add(row)
    await flush_or_conflict(session, _name_taken(body.name))
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="inventory",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    return InventoryOut.model_validate(row)


@router.post("/preview", response_model=PreviewOut)
async def preview_tree(
    body: PreviewIn, caller: TemplatesReader, resolver: ResolverDep, refresh: RefreshQuery = False
) -> PreviewOut:
    """The devices an unsaved tree selects."""
    tree = parse_inventory_tree(body.tree)
    return PreviewOut.of(await resolver.resolve_tree(tree, refresh=refresh))


@router.get("/{inventory_id}", response_model=InventoryOut)
async def get_inventory(
    inventory_id: int, caller: TemplatesReader, session: SessionDep
) -> InventoryOut:
    return InventoryOut.model_validate(
        await get_visible(session, Inventory, inventory_id, caller, label="inventory")
    )


@router.post("/{inventory_id}/preview", response_model=PreviewOut)
async def preview_inventory(
    inventory_id: int,
    caller: TemplatesReader,
    session: SessionDep,
    resolver: ResolverDep,
    refresh: RefreshQuery = False,
) -> PreviewOut:
    """The devices a saved inventory selects now."""
    row = await get_visible(session, Inventory, inventory_id, caller, label="inventory")
    tree = parse_inventory_tree(row.tree)
    return PreviewOut.of(await resolver.resolve_tree(tree, refresh=refresh))


@router.patch("/{inventory_id}", response_model=InventoryOut)
async def update_inventory(
    inventory_id: int,
    body: InventoryUpdate,
    caller: TemplatesWriter,
    request: Request,
    session: SessionDep,
) -> InventoryOut:
    row = await get_visible(session, Inventory, inventory_id, caller, label="inventory")
    require_owner(caller, row, label="inventory")
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(Inventory, changes)
    if "tree" in changes:
        changes["tree"] = _stored_tree(changes["tree"])
    for name, value in changes.items():
        setattr(row, name, value)
    await flush_or_conflict(session, _name_taken(row.name))
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="inventory",
        resource_id=row.id,
        request=request,
        details={"fields": sorted(changes)},
    )
    await session.commit()
    await session.refresh(row)
    return InventoryOut.model_validate(row)


@router.delete("/{inventory_id}", status_code=204)
async def delete_inventory(
    inventory_id: int, caller: TemplatesDeleter, request: Request, session: SessionDep
) -> Response:
    row = await get_visible(session, Inventory, inventory_id, caller, label="inventory")
    require_owner(caller, row, label="inventory")
    await session.delete(row)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="inventory",
        resource_id=inventory_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)

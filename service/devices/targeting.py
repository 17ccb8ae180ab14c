"""Which devices a device job acts on: a saved inventory, explicit ids, or explicitly all.

A target spec names exactly one of the three; there is no default and no fallback
(invariant 9). Resolution asks Nautobot which devices match and takes their records from
the device cache while it is fresh (``refresh`` bypasses it), and says which it did.
Every failure raises :class:`InventoryResolutionError`, which fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.asyncio import Redis

from service.access.resources import ResourceKind, ResourceRef
from service.db.device_models import Inventory
from service.db.engine import SessionFactory
from service.errors import InvalidInput
from service.inventory.cache import CachedDevices, DeviceCache
from service.inventory.conditions import InventoryTree, parse_inventory_tree
from service.inventory.device import Device
from service.inventory.nautobot import NautobotClient, NautobotError
from service.inventory.resolver import (
    InventoryResolutionError,
    by_name,
    require_all_found,
    resolve_inventory_ids,
)
from service.settings import NautobotSettings

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
DeviceId = Annotated[str, Field(min_length=1, max_length=64)]
#: Unknown ids named in an error message (the rest are counted).
_SHOWN_IDS = 10


class DeviceTargetSpec(BaseModel):
    """``{"inventory_id": 3}``, ``{"device_ids": [...]}`` or ``{"all": true}`` — exactly one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inventory_id: Annotated[int | None, ResourceRef(ResourceKind.INVENTORY)] = Field(
        default=None, ge=1
    )
    device_ids: list[DeviceId] | None = Field(default=None, min_length=1, max_length=10_000)
    all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> DeviceTargetSpec:
        chosen = [
            name
            for name, given in (
                ("inventory_id", self.inventory_id is not None),
                ("device_ids", self.device_ids is not None),
                ("all", self.all),
            )
            if given
        ]
        if len(chosen) != 1:
            also = f" (got {' and '.join(chosen)})" if chosen else ""
            raise ValueError(f"choose exactly one of inventory_id, device_ids or all: true{also}")
        return self


@dataclass(frozen=True)
class Resolution:
    """The resolved devices (by name) and whether their records came from the cache."""

    devices: list[Device]
    cached: bool
    cache_age: float | None = None


class DeviceResolver:
    """Resolves target specs and trees through Nautobot and the device cache."""

    def __init__(self, client: NautobotClient, redis: Redis, settings: NautobotSettings) -> None:
        self._client = client
        self._cache = DeviceCache(redis, ttl=settings.cache_ttl)
        self._configured = bool(settings.url)

    def _check_configured(self) -> None:
        if not self._configured:
            raise InventoryResolutionError(
                "Nautobot is not configured (set [nautobot] url and token)"
            )

    async def _snapshot(self, refresh: bool) -> CachedDevices | None:
        return None if refresh else await self._cache.read()

    async def resolve_spec(
        self, sessions: SessionFactory, spec: DeviceTargetSpec, *, refresh: bool = False
    ) -> Resolution:
        """The devices ``spec`` names."""
        if spec.inventory_id is not None:
            tree = await load_inventory_tree(sessions, spec.inventory_id)
            return await self.resolve_tree(tree, refresh=refresh)
        if spec.device_ids is not None:
            return await self.resolve_ids(spec.device_ids, refresh=refresh)
        return await self.resolve_all(refresh=refresh)

    async def resolve_tree(self, tree: InventoryTree, *, refresh: bool = False) -> Resolution:
        """The devices a condition tree selects (Nautobot decides which)."""
        self._check_configured()
        ids = await resolve_inventory_ids(self._client, tree)
        return await self._records(ids, refresh=refresh, unknown_is="disappeared")

    async def resolve_ids(self, ids: Iterable[str], *, refresh: bool = False) -> Resolution:
        """The devices with these ids; an id Nautobot does not know fails the resolution."""
        self._check_configured()
        return await self._records(set(ids), refresh=refresh, unknown_is="unknown")

    async def resolve_all(self, *, refresh: bool = False) -> Resolution:
        """Every device — the explicit "all" choice."""
        self._check_configured()
        snapshot = await self._snapshot(refresh)
        if snapshot is not None:
            return Resolution(by_name(snapshot.devices.values()), True, snapshot.age())
        try:
            devices = await self._client.devices({})
        except NautobotError as exc:
            raise InventoryResolutionError(
                f"all devices could not be listed: {exc.message}"
            ) from exc
        return Resolution(by_name(devices), cached=False)

    async def _records(self, ids: set[str], *, refresh: bool, unknown_is: str) -> Resolution:
        snapshot = await self._snapshot(refresh)
        found: list[Device] = []
        if snapshot is not None:
            found = [snapshot.devices[i] for i in ids if i in snapshot.devices]
        missing = ids - {device.id for device in found}
        if missing:
            # Devices added since the snapshot (or no snapshot): ask Nautobot for them.
            try:
                found.extend(await self._client.devices_by_id(missing))
            except NautobotError as exc:
                raise InventoryResolutionError(
                    f"device records could not be fetched: {exc.message}"
                ) from exc
        if unknown_is == "unknown":
            unknown = sorted(ids - {device.id for device in found})
            if unknown:
                shown = ", ".join(unknown[:_SHOWN_IDS])
                more = f" and {len(unknown) - _SHOWN_IDS} more" if len(unknown) > _SHOWN_IDS else ""
                raise InventoryResolutionError(f"devices not found in Nautobot: {shown}{more}")
        else:
            require_all_found(ids, found)
        cached = snapshot is not None and not missing
        return Resolution(by_name(found), cached, snapshot.age() if snapshot else None)

    async def refresh_cache(self) -> int:
        """Replace the cache with every device from Nautobot; returns how many."""
        resolution = await self.resolve_all(refresh=True)
        await self._cache.write(resolution.devices)
        return len(resolution.devices)


async def load_inventory_tree(sessions: SessionFactory, inventory_id: int) -> InventoryTree:
    """The saved tree of an inventory; a missing or unreadable one fails the resolution."""
    async with sessions() as session:
        row = await session.get(Inventory, inventory_id)
    if row is None:
        raise InventoryResolutionError(f"inventory {inventory_id} does not exist")
    try:
        return parse_inventory_tree(row.tree)
    except InvalidInput as exc:
        raise InventoryResolutionError(
            f"inventory {inventory_id} is not valid: {exc.message}"
        ) from exc


async def resolve_run_devices(
    resolver: DeviceResolver, sessions: SessionFactory, spec: DeviceTargetSpec, *, run_id: int
) -> Resolution:
    """The devices a run's target spec names (for an executor's ``resolve_targets``)."""
    resolution = await resolver.resolve_spec(sessions, spec)
    logger.info(
        "resolved %s device(s)",
        len(resolution.devices),
        extra={"run_id": run_id, "cached": resolution.cached},
    )
    return resolution


def from_cache(targets: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the device records of resolved targets' data came from the device cache."""
    return bool(targets) and all(data.get("from_cache") for data in targets)


def interleave_by_site(items: Sequence[ItemT], site: Callable[[ItemT], str | None]) -> list[ItemT]:
    """``items`` taken round-robin over their sites, each site's items in their order.

    A fan-out works through its targets in order; in name order one site's devices come
    together and its per-site session limit would hold most fan-out slots idle while
    other sites wait. Round-robin keeps every site busy at once.
    """
    by_site: dict[str, list[ItemT]] = {}
    for item in items:
        by_site.setdefault(site(item) or "", []).append(item)
    queues = list(by_site.values())
    longest = max(map(len, queues), default=0)
    return [queue[i] for i in range(longest) for queue in queues if i < len(queue)]

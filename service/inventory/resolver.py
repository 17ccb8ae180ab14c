"""Turn a condition tree into the set of devices it describes, exactly as written.

Semantics (left to right, no hidden precedence):

- a container (the root or a group) folds its items in order; the first item seeds the
  set; a later *condition* joins with the container's ``internalLogic`` (AND = intersect,
  OR = union); a later *group* joins with its own ``logic`` (AND, OR, or NOT = "and not");
- a group whose ``logic`` is NOT and that comes first means "every device except it";
- ``not_equals``/``not_contains`` select every device minus the positive match;
- an empty intermediate set stays empty — it is never replaced by a later operation;
- any query failure raises :class:`InventoryResolutionError`; nothing falls back to all
  devices. "All devices" is the separate, explicit :func:`resolve_all_devices`.

Field → Nautobot filter (the origin's mapping): ``name`` → ``name`` / ``name__ic``
(substring, not a regex); ``location`` → ``location`` (includes descendant locations) /
locations whose name contains the value, then ``location`` with their ids; ``role``,
``status``, ``device_type``, ``manufacturer``, ``platform`` → the same name; ``tag`` →
``tags``; ``has_primary`` → ``has_primary_ip``; ``cf_<key>`` → ``cf_<key>`` /
``cf_<key>__ic``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from service.errors import TargetResolutionError
from service.inventory.conditions import (
    Condition,
    Group,
    InventoryTree,
    is_custom_field,
    iter_conditions,
    parse_boolean,
)
from service.inventory.device import Device
from service.inventory.nautobot import GraphQLValue, NautobotClient, NautobotError

logger = logging.getLogger(__name__)

#: Nautobot queries in flight at once while resolving one tree.
QUERY_CONCURRENCY = 4

_FILTER_NAMES = {
    "name": "name",
    "location": "location",
    "role": "role",
    "status": "status",
    "tag": "tags",
    "device_type": "device_type",
    "manufacturer": "manufacturer",
    "platform": "platform",
    "has_primary": "has_primary_ip",
}


class InventoryResolutionError(TargetResolutionError):
    """The inventory could not be resolved; the run fails with this reason."""

    code = "inventory_resolution_failed"


def condition_filter(condition: Condition) -> dict[str, GraphQLValue]:
    """The ``devices(...)`` arguments of a condition's *positive* match.

    ``location`` with ``contains`` has no single device filter; it is resolved in two
    steps by :func:`resolve_inventory` and raises ``ValueError`` here.
    """
    field, value = condition.field, condition.value
    contains = condition.operator in ("contains", "not_contains")
    if field == "has_primary":
        return {"has_primary_ip": parse_boolean(value)}
    if is_custom_field(field):
        return {f"{field}__ic" if contains else field: value}
    if field == "name":
        return {"name__ic" if contains else "name": [value]}
    if contains:
        raise ValueError(f"field {field!r} has no direct contains filter")
    return {_FILTER_NAMES[field]: [value]}


class _Resolution:
    """The per-call state of one resolution: condition results and the universe."""

    def __init__(self, client: NautobotClient) -> None:
        self._client = client
        self._limit = asyncio.Semaphore(QUERY_CONCURRENCY)
        self._universe: asyncio.Task[set[str]] | None = None
        self.matches: dict[Condition, set[str]] = {}

    async def universe(self) -> set[str]:
        # One all-devices query per resolution, however many negations need it.
        if self._universe is None:
            self._universe = asyncio.ensure_future(self._query_all())
        return await self._universe

    def close(self) -> None:
        if self._universe is not None:
            self._universe.cancel()

    async def _query_all(self) -> set[str]:
        async with self._limit:
            return await self._client.all_device_ids()

    async def fetch(self, condition: Condition) -> None:
        positive = await self._positive(condition)
        if condition.negated:
            positive = await self.universe() - positive
        self.matches[condition] = positive

    async def _positive(self, condition: Condition) -> set[str]:
        async with self._limit:
            if condition.field == "location" and condition.operator in (
                "contains",
                "not_contains",
            ):
                locations = await self._client.location_ids(condition.value)
                if not locations:
                    # devices(location: []) would mean "no filter", i.e. every device.
                    return set()
                return await self._client.device_ids({"location": locations})
            return await self._client.device_ids(condition_filter(condition))


def _fold(
    items: Sequence[Condition | Group],
    internal_logic: str,
    matches: dict[Condition, set[str]],
    universe: set[str] | None,
) -> set[str]:
    result: set[str] | None = None
    for item in items:
        if isinstance(item, Condition):
            current, join = matches[item], internal_logic
        else:
            current = _fold(item.items, item.internal_logic, matches, universe)
            join = item.logic
        if result is None:
            result = set(current) if join != "NOT" else _required(universe) - current
        elif join == "AND":
            result &= current
        elif join == "OR":
            result |= current
        else:
            result -= current
    return result if result is not None else set()


def _required(universe: set[str] | None) -> set[str]:
    if universe is None:
        raise RuntimeError("a leading NOT group needs the all-devices set")
    return universe


def _needs_universe(items: Sequence[Condition | Group]) -> bool:
    """Whether some container starts with a NOT group (complemented against all devices)."""
    if items and isinstance(items[0], Group) and items[0].logic == "NOT":
        return True
    return any(isinstance(item, Group) and _needs_universe(item.items) for item in items)


async def resolve_inventory_ids(client: NautobotClient, tree: InventoryTree) -> set[str]:
    """Ids of the devices ``tree`` selects; raises :class:`InventoryResolutionError`."""
    resolution = _Resolution(client)
    conditions = list(dict.fromkeys(iter_conditions(tree.items)))
    tasks = [asyncio.ensure_future(resolution.fetch(condition)) for condition in conditions]
    try:
        await asyncio.gather(*tasks)
        universe = await resolution.universe() if _needs_universe(tree.items) else None
        return _fold(tree.items, tree.internal_logic, resolution.matches, universe)
    except NautobotError as exc:
        failed = _first_failed(conditions, tasks)
        where = f" (condition {failed.describe()})" if failed else ""
        raise InventoryResolutionError(
            f"inventory could not be resolved{where}: {exc.message}"
        ) from exc
    finally:
        for task in tasks:
            task.cancel()
        resolution.close()


def require_all_found(ids: set[str], devices: Sequence[Device]) -> None:
    """Raise when the records of some matched ids could not be fetched.

    Devices deleted between the two queries: the set the user wrote can no longer be
    delivered in full, and a narrowed run must not pass for a complete one.
    """
    missing = len(ids - {device.id for device in devices})
    if missing:
        raise InventoryResolutionError(
            f"inventory could not be resolved: {missing} matched device(s) disappeared "
            "from Nautobot while resolving"
        )


def by_name(devices: Iterable[Device]) -> list[Device]:
    """Devices in the order runs and previews list them: by name, then id."""
    return sorted(devices, key=lambda device: (device.name, device.id))


async def resolve_inventory(client: NautobotClient, tree: InventoryTree) -> list[Device]:
    """The devices ``tree`` selects, sorted by name; raises :class:`InventoryResolutionError`."""
    ids = await resolve_inventory_ids(client, tree)
    try:
        devices = await client.devices_by_id(ids)
    except NautobotError as exc:
        raise InventoryResolutionError(f"inventory could not be resolved: {exc.message}") from exc
    require_all_found(ids, devices)
    logger.info("resolved inventory to %s device(s)", len(devices))
    return by_name(devices)


def _first_failed(
    conditions: Sequence[Condition], tasks: Sequence[asyncio.Future[None]]
) -> Condition | None:
    for condition, task in zip(conditions, tasks, strict=True):
        if task.done() and not task.cancelled() and task.exception() is not None:
            return condition
    return None


async def resolve_all_devices(client: NautobotClient) -> list[Device]:
    """Every device in Nautobot — the explicit "all devices" choice, sorted by name."""
    try:
        devices = await client.devices({})
    except NautobotError as exc:
        raise InventoryResolutionError(f"all devices could not be listed: {exc.message}") from exc
    return by_name(devices)

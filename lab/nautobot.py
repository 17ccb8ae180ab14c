"""A Nautobot GraphQL simulator: ``POST /api/graphql/`` with ``Authorization: Token …``,
and ``PATCH /api/dcim/devices/<id>/`` for custom fields.

It serves a :class:`LabInventory` (locations with parents, roles, statuses, platforms with
``network_driver``, device types and manufacturers, tags, custom fields including
``ssh_port``) and supports the filters opsjobs' resolver uses, with Nautobot's rules:
name-or-id choice filters answer a GraphQL error for a value that names nothing,
``location`` includes descendant locations, an empty list filters nothing, and
``limit``/``offset`` page. Tests mutate the inventory and the failure knobs directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lab.http_server import LoopbackServer
from lab.nautobot_inventory import LabDevice, LabInventory, LabLocation
from lab.nautobot_query import FieldNode, GraphQLSyntaxError, parse_query, project

logger = logging.getLogger(__name__)


class _QueryError(Exception):
    pass


_CHOICE_FILTERS: dict[str, Callable[[LabInventory], set[str]]] = {
    "role": lambda inv: inv.roles,
    "status": lambda inv: inv.statuses,
    "platform": lambda inv: {p.name for p in inv.platforms} | {p.id for p in inv.platforms},
    "manufacturer": lambda inv: set(inv.device_types.values()),
    "device_type": lambda inv: set(inv.device_types),
    "tags": lambda inv: inv.tags,
}
_DEVICE_VALUE: dict[str, Callable[[LabDevice], set[str]]] = {
    "role": lambda d: {d.role},
    "status": lambda d: {d.status},
    "platform": lambda d: {d.platform.name, d.platform.id} if d.platform else set(),
    "manufacturer": lambda d: {d.manufacturer},
    "device_type": lambda d: {d.device_type},
    "tags": lambda d: set(d.tags),
}


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _invalid_choice(argument: str, value: str) -> _QueryError:
    return _QueryError(
        f"{{'{argument}': ['Select a valid choice. {value} is not one of the available choices.']}}"
    )


def _paging(arguments: dict[str, Any]) -> tuple[dict[str, Any], slice]:
    filters = dict(arguments)
    offset = int(filters.pop("offset", 0) or 0)
    limit = filters.pop("limit", None)
    return filters, slice(offset, None if limit is None else offset + int(limit))


def _filter_devices(inventory: LabInventory, arguments: dict[str, Any]) -> list[LabDevice]:
    devices = sorted(inventory.devices, key=lambda d: (d.name, d.id))
    for argument, value in arguments.items():
        values = _as_list(value)
        if isinstance(value, list) and not value:
            continue  # an empty list filters nothing, as in Nautobot
        devices = [d for d in devices if _device_matches(inventory, d, argument, value, values)]
    return devices


def _device_matches(
    inventory: LabInventory, device: LabDevice, argument: str, value: Any, values: list[str]
) -> bool:
    if argument == "id":
        return device.id in values
    if argument == "name":
        return device.name in values
    if argument == "name__ic":
        return any(v.lower() in device.name.lower() for v in values)
    if argument == "has_primary_ip":
        return bool(device.primary_ip4) == bool(value)
    if argument == "location":
        wanted: set[str] = set()
        for v in values:
            matches = [loc for loc in inventory.locations if v in (loc.name, loc.id)]
            if not matches:
                raise _invalid_choice("location", v)
            wanted.update(loc.id for loc in matches)
        return any(loc.id in wanted for loc in device.location.lineage())
    if argument in _CHOICE_FILTERS:
        known = _CHOICE_FILTERS[argument](inventory)
        for v in values:
            if v not in known:
                raise _invalid_choice(argument, v)
        return bool(_DEVICE_VALUE[argument](device) & set(values))
    key, _, lookup = argument.removeprefix("cf_").partition("__")
    if argument.startswith("cf_") and key in inventory.custom_fields and lookup in ("", "ic"):
        actual = device.custom_fields.get(key)
        if actual is None:
            return False
        if lookup == "ic":
            return any(v.lower() in str(actual).lower() for v in values)
        return str(actual) in values
    raise _QueryError(f'Unknown argument "{argument}" on field "devices" of type "Query".')


def _filter_locations(inventory: LabInventory, arguments: dict[str, Any]) -> list[LabLocation]:
    locations = sorted(inventory.locations, key=lambda loc: (loc.name, loc.id))
    for argument, value in arguments.items():
        values = _as_list(value)
        if argument == "name":
            locations = [loc for loc in locations if loc.name in values]
        elif argument == "name__ic":
            locations = [
                loc for loc in locations if any(v.lower() in loc.name.lower() for v in values)
            ]
        elif argument == "id":
            locations = [loc for loc in locations if loc.id in values]
        else:
            raise _QueryError(
                f'Unknown argument "{argument}" on field "locations" of type "Query".'
            )
    return locations


def execute(inventory: LabInventory, fields: tuple[FieldNode, ...]) -> dict[str, Any]:
    """Answer the top-level ``devices``, ``device`` and ``locations`` fields."""
    data: dict[str, Any] = {}
    for node in fields:
        filters, window = _paging(node.arguments)
        if node.name == "devices":
            devices = _filter_devices(inventory, filters)[window]
            answer: Any = [device.payload() for device in devices]
            type_name = "DeviceType"
        elif node.name == "device":
            wanted = str(filters.get("id"))
            answer = next((d.payload() for d in inventory.devices if d.id == wanted), None)
            type_name = "DeviceType"
        elif node.name == "locations":
            answer = [loc.payload() for loc in _filter_locations(inventory, filters)[window]]
            type_name = "LocationType"
        else:
            raise _QueryError(f'Cannot query field "{node.name}" on type "Query".')
        data[node.key] = project(answer, node.selections, type_name)
    return data


class NautobotLab:
    """The simulator's HTTP server on a loopback port (``port=0`` picks a free one).

    Knobs for tests: ``latency`` (seconds before each answer), ``fail_next`` (answer the
    next N requests with HTTP 500), ``requests`` (GraphQL queries served so far).
    """

    def __init__(
        self,
        inventory: LabInventory,
        *,
        token: str = "lab-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.inventory = inventory
        self.token = token
        self.latency = 0.0
        self.fail_next = 0
        self.requests = 0
        self.queries: list[str] = []
        self._server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/api/graphql/", self._graphql, methods=["POST"]),
                    Route("/api/dcim/devices/{device_id}/", self._patch_device, methods=["PATCH"]),
                ]
            ),
            host=host,
            port=port,
        )

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:<port>``) to give a Nautobot client."""
        if not self._server.running:
            raise RuntimeError("the Nautobot lab is not started")
        return f"http://{self._server.host}:{self._server.port}"

    async def _graphql(self, request: Request) -> JSONResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        header = request.headers.get("authorization", "")
        if not header:
            return JSONResponse(
                {"detail": "Authentication credentials were not provided."}, status_code=403
            )
        if header != f"Token {self.token}":
            return JSONResponse({"detail": "Invalid token"}, status_code=403)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        try:
            body = await request.json()
            query = body["query"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "Must provide query string."}]}, 400)
        self.requests += 1
        self.queries.append(query)
        try:
            fields = parse_query(query, body.get("variables") or {})
            data = execute(self.inventory, fields)
        except (GraphQLSyntaxError, _QueryError) as exc:
            return JSONResponse({"data": None, "errors": [{"message": str(exc)}]})
        return JSONResponse({"data": data})

    async def _patch_device(self, request: Request) -> JSONResponse:
        """``PATCH /api/dcim/devices/<id>/`` with ``{"custom_fields": {...}}``, as Nautobot."""
        if request.headers.get("authorization", "") != f"Token {self.token}":
            return JSONResponse({"detail": "Invalid token"}, status_code=403)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        device_id = request.path_params["device_id"]
        device = next((d for d in self.inventory.devices if d.id == device_id), None)
        if device is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        try:
            body = await request.json()
            changes = dict(body["custom_fields"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"custom_fields": ["This field is required."]}, 400)
        unknown = sorted(set(changes) - self.inventory.custom_fields)
        if unknown:
            message = f"Unknown field name '{unknown[0]}' in custom field data."
            return JSONResponse({"custom_fields": [message]}, status_code=400)
        self.requests += 1
        device.custom_fields.update(changes)
        return JSONResponse(device.payload())

    async def start(self) -> None:
        """Bind the port and start serving."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop serving and release the port."""
        await self._server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

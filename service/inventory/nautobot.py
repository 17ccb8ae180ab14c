"""An async client for Nautobot's GraphQL API (``POST /api/graphql/``, token auth).

Filters are written into the query as GraphQL literals rather than variables: a single
literal is valid both where Nautobot declares ``String`` and ``[String]`` (list input
coercion), so custom-field filters work without first fetching each field's type.
Argument names are checked against the GraphQL name grammar and string values are
escaped, so nothing a user typed can change the query's structure.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from service.errors import OpsjobsError
from service.inventory.device import DEVICE_FIELDS, Device, device_from_graphql

logger = logging.getLogger(__name__)

GraphQLValue = str | bool | int | Sequence[str]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Ids per ``devices(id: [...])`` request when fetching payloads for a resolved set.
ID_CHUNK = 200


class NautobotError(OpsjobsError):
    """Nautobot could not answer: unreachable, timed out, refused the token, or a
    GraphQL error (e.g. a filter value that names no existing object)."""

    code = "nautobot_error"


def graphql_literal(value: GraphQLValue) -> str:
    """Render ``value`` as a GraphQL input literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON string escapes (ASCII only) are a subset of GraphQL's.
        return json.dumps(value, ensure_ascii=True)
    return "[" + ", ".join(graphql_literal(item) for item in value) + "]"


def graphql_arguments(arguments: Mapping[str, GraphQLValue]) -> str:
    """Render ``name: literal, ...``; rejects names that are not GraphQL names."""
    for name in arguments:
        if not _NAME.match(name):
            raise ValueError(f"invalid GraphQL argument name {name!r}")
    return ", ".join(f"{name}: {graphql_literal(value)}" for name, value in arguments.items())


class NautobotClient:
    """Reads devices and locations from one Nautobot instance.

    Pass a shared ``http_client`` (made once per process) or let the client own one;
    ``aclose()`` closes only a client it created.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        page_size: int = 500,
        verify_tls: bool = True,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self._base = url.rstrip("/")
        self._endpoint = self._base + "/api/graphql/"
        self._headers = {
            "Authorization": f"Token {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._timeout = timeout
        self._page_size = page_size
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, verify=verify_tls)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def query(self, query: str) -> dict[str, Any]:
        """Run one GraphQL query and return its ``data``; raises :class:`NautobotError`."""
        try:
            response = await self._http.post(
                self._endpoint,
                json={"query": query},
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise NautobotError(
                f"Nautobot did not answer within {self._timeout:g} s ({self._endpoint})"
            ) from None
        except httpx.HTTPError as exc:
            raise NautobotError(f"cannot reach Nautobot at {self._endpoint}: {exc}") from None
        if response.status_code in (401, 403):
            raise NautobotError(f"Nautobot refused the API token (HTTP {response.status_code})")
        if response.status_code != 200:
            raise NautobotError(f"Nautobot answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise NautobotError("Nautobot answered with something that is not JSON") from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            messages = "; ".join(str(error.get("message", error)) for error in errors)
            raise NautobotError(f"Nautobot GraphQL error: {messages}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise NautobotError("Nautobot answered without a GraphQL data object")
        return data

    async def update_custom_fields(self, device_id: str, values: Mapping[str, Any]) -> None:
        """Set custom fields of one device (REST ``PATCH /api/dcim/devices/<id>/``)."""
        url = f"{self._base}/api/dcim/devices/{quote(device_id, safe='')}/"
        try:
            response = await self._http.patch(
                url,
                json={"custom_fields": dict(values)},
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise NautobotError(f"Nautobot did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise NautobotError(f"cannot reach Nautobot at {url}: {exc}") from None
        if response.status_code in (401, 403):
            raise NautobotError(f"Nautobot refused the API token (HTTP {response.status_code})")
        if response.status_code != 200:
            raise NautobotError(
                f"Nautobot answered HTTP {response.status_code}: {response.text[:200]}"
            )

    async def _paged(
        self, field: str, arguments: Mapping[str, GraphQLValue], selection: str
    ) -> list[dict[str, Any]]:
        """Every item of a list field, fetched ``page_size`` at a time.

        Paging stops at the first empty page rather than the first short one, so a server
        that caps ``limit`` below ours cannot silently truncate the result.
        """
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            paging = {"limit": self._page_size, "offset": offset}
            rendered = graphql_arguments({**arguments, **paging})
            data = await self.query(f"query {{ {field}({rendered}) {{ {selection} }} }}")
            page = data.get(field)
            if not isinstance(page, list):
                raise NautobotError(f"Nautobot answered without a {field} list")
            if not page:
                return items
            items.extend(page)
            offset += len(page)

    async def device_ids(self, arguments: Mapping[str, GraphQLValue]) -> set[str]:
        """Ids of the devices matching ``devices(<arguments>)``.

        An empty ``arguments`` means every device, as in Nautobot; callers that mean
        "all devices" should say so through :meth:`all_device_ids`.
        """
        return {str(item["id"]) for item in await self._paged("devices", arguments, "id")}

    async def all_device_ids(self) -> set[str]:
        """Ids of every device."""
        return await self.device_ids({})

    async def location_ids(self, name_contains: str) -> list[str]:
        """Ids of locations whose name contains ``name_contains`` (case-insensitive)."""
        items = await self._paged("locations", {"name__ic": [name_contains]}, "id")
        return [str(item["id"]) for item in items]

    async def devices(self, arguments: Mapping[str, GraphQLValue]) -> list[Device]:
        """Full device records matching ``devices(<arguments>)``, in Nautobot's order."""
        items = await self._paged("devices", arguments, DEVICE_FIELDS)
        return [device_from_graphql(item) for item in items]

    async def devices_by_id(self, ids: Iterable[str]) -> list[Device]:
        """Full records of the given device ids; ids Nautobot does not know are absent."""
        wanted = sorted(set(ids))
        found: list[Device] = []
        for start in range(0, len(wanted), ID_CHUNK):
            found.extend(await self.devices({"id": wanted[start : start + ID_CHUNK]}))
        return found

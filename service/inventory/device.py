"""The device record every device job works with, parsed from Nautobot's GraphQL payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: The GraphQL selection that fills a :class:`Device`; the location's parent chain is
#: fetched four levels up (room → site → country → region covers common hierarchies).
DEVICE_FIELDS = """
id
name
serial
primary_ip4 { address }
platform { name network_driver }
location { name parent { name parent { name parent { name } } } }
role { name }
status { name }
device_type { model manufacturer { name } }
tags { name }
_custom_field_data
"""


@dataclass(frozen=True, slots=True)
class Device:
    """One Nautobot device, reduced to what jobs need.

    ``primary_ip4`` keeps Nautobot's ``address/prefix-length`` form; ``location_path``
    runs from the top-most ancestor down to the device's own location.
    """

    id: str
    name: str
    primary_ip4: str | None = None
    platform: str | None = None
    network_driver: str | None = None
    location_path: tuple[str, ...] = ()
    role: str | None = None
    status: str | None = None
    device_type: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    tags: tuple[str, ...] = ()
    custom_fields: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    @property
    def location(self) -> str | None:
        """The name of the device's own location."""
        return self.location_path[-1] if self.location_path else None

    @property
    def primary_host(self) -> str | None:
        """The primary IPv4 address without its prefix length."""
        if not self.primary_ip4:
            return None
        return self.primary_ip4.split("/", 1)[0]

    def context(self) -> dict[str, Any]:
        """The device as a Nautobot-shaped dict (for command templates and path templates).

        Keys follow Nautobot's GraphQL names (``primary_ip4.address``, ``platform.name``,
        ``location.parent.name``, ``_custom_field_data``) so templates written against
        Nautobot keep working; ``custom_fields`` is an alias of ``_custom_field_data``.
        """
        custom = dict(self.custom_fields)
        return {
            "id": self.id,
            "name": self.name,
            "serial": self.serial,
            "primary_ip4": (
                {"address": self.primary_ip4, "host": self.primary_host}
                if self.primary_ip4
                else None
            ),
            "platform": (
                {"name": self.platform, "network_driver": self.network_driver}
                if self.platform
                else None
            ),
            "location": _location_context(self.location_path),
            "role": _named(self.role),
            "status": _named(self.status),
            "device_type": (
                {"model": self.device_type, "manufacturer": _named(self.manufacturer)}
                if self.device_type
                else None
            ),
            "manufacturer": _named(self.manufacturer),
            "tags": [{"name": tag} for tag in self.tags],
            "_custom_field_data": custom,
            "custom_fields": custom,
        }


def _named(value: str | None) -> dict[str, str] | None:
    return {"name": value} if value else None


def _location_context(path: tuple[str, ...]) -> dict[str, Any] | None:
    node: dict[str, Any] | None = None
    for name in path:
        node = {"name": name, "parent": node}
    return node


def device_from_graphql(payload: Mapping[str, Any]) -> Device:
    """Build a :class:`Device` from one item of a ``devices { ... }`` GraphQL answer."""
    platform = payload.get("platform") or {}
    device_type = payload.get("device_type") or {}
    primary = payload.get("primary_ip4") or {}
    return Device(
        id=str(payload["id"]),
        name=str(payload.get("name") or ""),
        primary_ip4=primary.get("address"),
        platform=platform.get("name"),
        network_driver=platform.get("network_driver") or None,
        location_path=_location_path(payload.get("location")),
        role=_name_of(payload.get("role")),
        status=_name_of(payload.get("status")),
        device_type=device_type.get("model"),
        manufacturer=_name_of(device_type.get("manufacturer")),
        serial=payload.get("serial") or None,
        tags=tuple(str(tag["name"]) for tag in payload.get("tags") or ()),
        custom_fields=MappingProxyType(dict(payload.get("_custom_field_data") or {})),
    )


def _name_of(node: Mapping[str, Any] | None) -> str | None:
    if not node:
        return None
    name = node.get("name")
    return str(name) if name is not None else None


def _location_path(node: Mapping[str, Any] | None) -> tuple[str, ...]:
    names: list[str] = []
    while node:
        names.append(str(node.get("name")))
        node = node.get("parent")
    return tuple(reversed(names))

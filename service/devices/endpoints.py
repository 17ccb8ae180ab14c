"""Where a device is reached: its primary IPv4, on the port its custom field names.

Real fleets listen on 22; a lab (or a jump through port forwards) puts many devices on
one address with one port each, recorded in a custom field (``ssh_port`` by default).
"""

from __future__ import annotations

from typing import Any

from service.devices.errors import NoAddress
from service.inventory.device import Device


def ssh_port(value: Any, *, default: int) -> int:
    """A custom-field port value as an int; ``None``/empty means ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise NoAddress(f"SSH port {value!r} is not a port number")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise NoAddress(f"SSH port {value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise NoAddress(f"SSH port {port} is out of range")
    return port


def ssh_endpoint(
    device: Device, *, port_field: str = "ssh_port", default_port: int = 22
) -> tuple[str, int]:
    """``(host, port)`` for ``device``; raises :class:`NoAddress` when it has none."""
    host = device.primary_host
    if not host:
        raise NoAddress(f"device {device.name} has no primary IPv4 address")
    return host, ssh_port(device.custom_fields.get(port_field), default=default_port)

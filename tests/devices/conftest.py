from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from lab.devices import DeviceFleet, SimDevice, make_device
from service.devices.host_keys import KnownHosts
from service.devices.runner import SshCredentials, SshOptions, SshRunner
from service.inventory.device import Device

PLATFORMS = ("cisco_ios", "cisco_nxos", "arista_eos", "juniper_junos")
CREDENTIALS = SshCredentials("lab", "lab-password")


def device_for(
    simulated: SimDevice, *, site: str = "fra1", port: int | None = None, **fields: Any
) -> Device:
    """The Nautobot record of a simulated device (reached on loopback at its own port)."""
    custom = {"ssh_port": simulated.port if port is None else port}
    values: dict[str, Any] = {
        "id": f"id-{simulated.name}",
        "name": simulated.name,
        "primary_ip4": "127.0.0.1/32",
        "network_driver": simulated.platform,
        "location_path": ("Europe", site),
        "custom_fields": MappingProxyType(custom),
    }
    values.update(fields)
    return Device(**values)


@pytest.fixture
async def fleet() -> AsyncIterator[DeviceFleet]:
    devices = [make_device(f"{platform}-1", platform) for platform in PLATFORMS]
    async with DeviceFleet(devices) as running:
        yield running


@pytest.fixture
async def known_hosts(tmp_path: Path) -> KnownHosts:
    return await KnownHosts.load(tmp_path / "known_hosts", accept_new=True)


@pytest.fixture
def runner(known_hosts: KnownHosts) -> SshRunner:
    return SshRunner(known_hosts, SshOptions(connect_timeout=5, command_timeout=5))

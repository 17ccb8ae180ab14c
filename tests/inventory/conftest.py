from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lab.nautobot import NautobotLab
from lab.nautobot_inventory import LabInventory
from service.inventory.nautobot import NautobotClient


def small_inventory() -> LabInventory:
    """Six devices chosen so every field and operator has a distinct answer."""
    inventory = LabInventory(tags={"core", "backup", "unused"}, roles={"unused-role"})
    inventory.add_location("Europe", "Region")
    inventory.add_location("fra1", "Site", "Europe")
    inventory.add_location("fra1-room1", "Room", "fra1")
    inventory.add_location("ams1", "Site", "Europe")
    inventory.add_location("Americas", "Region")
    inventory.add_location("nyc1", "Site", "Americas")
    inventory.add_platform("Cisco IOS", "cisco_ios", "Cisco")
    inventory.add_platform("Cisco NX-OS", "cisco_nxos", "Cisco")
    inventory.add_platform("Arista EOS", "arista_eos", "Arista")
    inventory.add_platform("Juniper Junos", "juniper_junos", "Juniper")
    inventory.device_types.update(
        {
            "ISR4331": "Cisco",
            "N9K-C93180YC-EX": "Cisco",
            "DCS-7280SR": "Arista",
            "MX204": "Juniper",
            "PA-3220": "Palo Alto",
        }
    )
    inventory.add_device(
        "fra1-rtr-01",
        location="fra1",
        role="router",
        platform="Cisco IOS",
        device_type="ISR4331",
        tags=["core", "backup"],
        custom_fields={"environment": "production", "owner": "NetOps team"},
    )
    inventory.add_device(
        "fra1-sw-01",
        location="fra1-room1",
        role="leaf",
        platform="Cisco NX-OS",
        device_type="N9K-C93180YC-EX",
        tags=["backup"],
        custom_fields={"environment": "staging", "owner": "dc-team"},
    )
    inventory.add_device(
        "ams1-spine-01",
        location="ams1",
        role="spine",
        platform="Arista EOS",
        device_type="DCS-7280SR",
        tags=["core"],
        custom_fields={"environment": "production"},
    )
    inventory.add_device(
        "ams1-edge-01",
        location="ams1",
        role="edge",
        platform="Juniper Junos",
        device_type="MX204",
        status="Planned",
        primary_ip4=None,
    )
    inventory.add_device(
        "nyc1-rtr-01",
        location="nyc1",
        role="router",
        platform="Cisco IOS",
        device_type="ISR4331",
        status="Offline",
        tags=["backup"],
        custom_fields={"owner": "dc-team", "ssh_port": 2201},
    )
    inventory.add_device(
        "nyc1-fw-01",
        location="nyc1",
        role="firewall",
        platform=None,
        device_type="PA-3220",
    )
    return inventory


@pytest.fixture(scope="package")
async def shared_lab() -> AsyncIterator[NautobotLab]:
    """One read-only lab for the package; tests that change it use ``nautobot_lab``."""
    async with NautobotLab(small_inventory(), token="t0ken") as lab:
        yield lab


@pytest.fixture
async def nautobot_lab() -> AsyncIterator[NautobotLab]:
    async with NautobotLab(small_inventory(), token="t0ken") as lab:
        yield lab


@pytest.fixture
async def nautobot(shared_lab: NautobotLab) -> AsyncIterator[NautobotClient]:
    async with NautobotClient(shared_lab.url, "t0ken", timeout=5, page_size=4) as client:
        yield client

"""The data a Nautobot simulator serves: locations, platforms, devices and the declared
roles, statuses, tags, device types and custom fields — plain mutable objects that tests
change between runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LabLocation:
    name: str
    location_type: str
    parent: LabLocation | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def lineage(self) -> list[LabLocation]:
        """This location and its ancestors, nearest first."""
        chain: list[LabLocation] = []
        node: LabLocation | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "location_type": {"name": self.location_type},
            "parent": self.parent.payload() if self.parent else None,
        }


@dataclass
class LabPlatform:
    name: str
    network_driver: str
    manufacturer: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class LabDevice:
    name: str
    location: LabLocation
    role: str
    status: str
    device_type: str
    manufacturer: str
    platform: LabPlatform | None
    primary_ip4: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    serial: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def payload(self) -> dict[str, Any]:
        platform = self.platform
        host, _, mask = (self.primary_ip4 or "").partition("/")
        return {
            "id": self.id,
            "name": self.name,
            "serial": self.serial,
            "asset_tag": None,
            "primary_ip4": (
                {"address": self.primary_ip4, "host": host, "mask_length": int(mask or 32)}
                if self.primary_ip4
                else None
            ),
            "primary_ip6": None,
            "platform": (
                {
                    "id": platform.id,
                    "name": platform.name,
                    "network_driver": platform.network_driver,
                    "manufacturer": {"name": platform.manufacturer},
                }
                if platform
                else None
            ),
            "location": self.location.payload(),
            "role": {"name": self.role},
            "status": {"name": self.status},
            "device_type": {"model": self.device_type, "manufacturer": {"name": self.manufacturer}},
            "tags": [{"name": tag} for tag in self.tags],
            "tenant": None,
            "_custom_field_data": dict(self.custom_fields),
        }


@dataclass
class LabInventory:
    """The objects Nautobot knows; choice filters validate against these sets."""

    locations: list[LabLocation] = field(default_factory=list)
    platforms: list[LabPlatform] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)
    statuses: set[str] = field(default_factory=lambda: {"Active", "Planned", "Offline"})
    tags: set[str] = field(default_factory=set)
    device_types: dict[str, str] = field(default_factory=dict)
    custom_fields: set[str] = field(default_factory=lambda: {"ssh_port"})
    devices: list[LabDevice] = field(default_factory=list)

    def location(self, name: str) -> LabLocation:
        """The location called ``name``."""
        return next(location for location in self.locations if location.name == name)

    def device(self, name: str) -> LabDevice:
        """The device called ``name``."""
        return next(device for device in self.devices if device.name == name)

    def add_location(self, name: str, location_type: str, parent: str | None = None) -> LabLocation:
        """Declare a location (under ``parent``, by name)."""
        location = LabLocation(name, location_type, self.location(parent) if parent else None)
        self.locations.append(location)
        return location

    def add_platform(self, name: str, network_driver: str, manufacturer: str) -> LabPlatform:
        """Declare a platform."""
        platform = LabPlatform(name, network_driver, manufacturer)
        self.platforms.append(platform)
        return platform

    def add_device(
        self,
        name: str,
        *,
        location: str,
        role: str,
        platform: str | None,
        device_type: str,
        status: str = "Active",
        primary_ip4: str | None = "127.0.0.1/32",
        tags: Iterable[str] = (),
        custom_fields: dict[str, Any] | None = None,
    ) -> LabDevice:
        """Add a device; its role, tags and custom-field keys are declared as needed."""
        found = next((p for p in self.platforms if p.name == platform), None)
        if platform is not None and found is None:
            raise KeyError(f"unknown platform {platform!r}")
        self.roles.add(role)
        self.statuses.add(status)
        self.tags.update(tags)
        self.custom_fields.update(custom_fields or {})
        device = LabDevice(
            name=name,
            location=self.location(location),
            role=role,
            status=status,
            device_type=device_type,
            manufacturer=self.device_types[device_type],
            platform=found,
            primary_ip4=primary_ip4,
            tags=list(tags),
            custom_fields=dict(custom_fields or {}),
            serial=f"SN{len(self.devices):08d}",
        )
        self.devices.append(device)
        return device


#: (platform name, network_driver, manufacturer, device type, role) per generated device.
LAB_PLATFORMS = (
    ("Cisco IOS", "cisco_ios", "Cisco", "ISR4331", "router"),
    ("Cisco NX-OS", "cisco_nxos", "Cisco", "N9K-C93180YC-EX", "leaf"),
    ("Arista EOS", "arista_eos", "Arista", "DCS-7280SR-48C6", "spine"),
    ("Juniper Junos", "juniper_junos", "Juniper", "MX204", "edge"),
)
_SITES = {"Europe": ("fra1", "ams1", "lon1"), "Americas": ("nyc1", "sfo1"), "Asia": ("sin1",)}


def generate_inventory(count: int, *, host: str = "127.0.0.1") -> LabInventory:
    """A deterministic inventory of ``count`` devices spread over sites and platforms.

    Regions hold sites, each site one room; devices cycle through the four lab platforms
    and the sites, every third one sits in the site's room. All devices get
    ``host/32`` as primary IPv4; ports are attached later (see ``attach_ssh_ports``).
    """
    inventory = LabInventory(
        roles={"router", "leaf", "spine", "edge", "firewall"},
        tags={"backup", "core", "edge", "lab"},
        custom_fields={"ssh_port", "environment", "owner"},
    )
    sites: list[str] = []
    for region, names in _SITES.items():
        inventory.add_location(region, "Region")
        for site in names:
            inventory.add_location(site, "Site", region)
            inventory.add_location(f"{site}-room1", "Room", site)
            sites.append(site)
    for name, driver, manufacturer, model, _ in LAB_PLATFORMS:
        inventory.add_platform(name, driver, manufacturer)
        inventory.device_types[model] = manufacturer
    for index in range(count):
        platform, _, _, model, role = LAB_PLATFORMS[index % len(LAB_PLATFORMS)]
        site = sites[(index // len(LAB_PLATFORMS)) % len(sites)]
        inventory.add_device(
            f"{site}-{role}-{index:04d}",
            location=f"{site}-room1" if index % 3 == 2 else site,
            role=role,
            platform=platform,
            device_type=model,
            status="Active" if index % 10 else "Planned",
            primary_ip4=f"{host}/32",
            tags=["backup"] + (["core"] if role in ("spine", "router") else []),
            custom_fields={
                "environment": "production" if index % 4 else "staging",
                "owner": "netops" if index % 2 else "dc-team",
            },
        )
    return inventory

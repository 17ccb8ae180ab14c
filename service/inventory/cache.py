"""A Redis cache of Nautobot's device records, refreshed by the ``cache_devices`` job.

The whole inventory is one JSON value with a TTL: it is fresh as long as it exists, and a
refresh replaces it atomically, so a reader never sees half of two snapshots. The cache
holds device records only; which devices a condition tree selects is still decided by
Nautobot (its filters are the reference), so a cached resolution and an uncached one
select the same devices.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from redis.asyncio import Redis

from service.inventory.device import Device
from service.keyspace import keyspace_of

logger = logging.getLogger(__name__)


def device_record(device: Device) -> dict[str, Any]:
    """``device`` as plain JSON data (the inverse of :func:`device_from_record`)."""
    return {
        "id": device.id,
        "name": device.name,
        "primary_ip4": device.primary_ip4,
        "platform": device.platform,
        "network_driver": device.network_driver,
        "location_path": list(device.location_path),
        "role": device.role,
        "status": device.status,
        "device_type": device.device_type,
        "manufacturer": device.manufacturer,
        "serial": device.serial,
        "tags": list(device.tags),
        "custom_fields": dict(device.custom_fields),
    }


def device_from_record(record: Mapping[str, Any]) -> Device:
    """A :class:`Device` from :func:`device_record` data."""
    return Device(
        id=str(record["id"]),
        name=str(record["name"]),
        primary_ip4=record.get("primary_ip4"),
        platform=record.get("platform"),
        network_driver=record.get("network_driver"),
        location_path=tuple(record.get("location_path") or ()),
        role=record.get("role"),
        status=record.get("status"),
        device_type=record.get("device_type"),
        manufacturer=record.get("manufacturer"),
        serial=record.get("serial"),
        tags=tuple(record.get("tags") or ()),
        custom_fields=MappingProxyType(dict(record.get("custom_fields") or {})),
    )


@dataclass(frozen=True)
class CachedDevices:
    """A snapshot of every device, by id, and when it was taken."""

    devices: Mapping[str, Device]
    fetched_at: datetime

    def age(self, now: datetime | None = None) -> float:
        """Seconds since the snapshot was taken."""
        return max(0.0, ((now or datetime.now(UTC)) - self.fetched_at).total_seconds())


class DeviceCache:
    """Reads and replaces the cached snapshot."""

    def __init__(self, redis: Redis, *, ttl: float) -> None:
        self._redis = redis
        self._key = keyspace_of(redis).device_cache()
        self._ttl = ttl

    async def read(self) -> CachedDevices | None:
        """The snapshot while it is fresh, else None."""
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            devices = {str(r["id"]): device_from_record(r) for r in data["devices"]}
            fetched_at = datetime.fromisoformat(data["fetched_at"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable device cache")
            return None
        return CachedDevices(MappingProxyType(devices), fetched_at)

    async def write(self, devices: Sequence[Device], *, now: datetime | None = None) -> None:
        """Replace the snapshot with ``devices``; it stays fresh for the TTL."""
        payload = {
            "fetched_at": (now or datetime.now(UTC)).isoformat(),
            "devices": [device_record(device) for device in devices],
        }
        await self._redis.set(self._key, json.dumps(payload), px=max(1, round(self._ttl * 1000)))

    async def clear(self) -> None:
        """Forget the snapshot (the next resolution asks Nautobot)."""
        await self._redis.delete(self._key)

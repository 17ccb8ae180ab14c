"""Target specs, fan-out order by site, and the device cache's record format."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from pydantic import ValidationError

from service.devices.targeting import DeviceTargetSpec, interleave_by_site
from service.inventory.cache import device_from_record, device_record
from service.inventory.device import Device


@pytest.mark.parametrize(
    ("spec", "valid"),
    [
        ({"inventory_id": 3}, True),
        ({"device_ids": ["a", "b"]}, True),
        ({"all": True}, True),
        ({}, False),
        ({"all": False}, False),
        ({"inventory_id": 3, "all": True}, False),
        ({"inventory_id": 3, "device_ids": ["a"]}, False),
        ({"device_ids": []}, False),
        ({"device_ids": [""]}, False),
        ({"inventory_id": 0}, False),
        ({"all": True, "everything": True}, False),
    ],
)
def test_a_spec_names_exactly_one_choice(spec: dict[str, object], valid: bool) -> None:
    if valid:
        assert DeviceTargetSpec.model_validate(spec)
    else:
        with pytest.raises(ValidationError):
            DeviceTargetSpec.model_validate(spec)


def test_interleave_by_site_keeps_each_site_in_order() -> None:
    items = ["a1", "a2", "a3", "a4", "b1", "b2", "c1"]
    assert interleave_by_site(items, lambda item: item[0]) == [
        "a1",
        "b1",
        "c1",
        "a2",
        "b2",
        "a3",
        "a4",
    ]
    assert interleave_by_site([], lambda item: item) == []


def test_cached_records_round_trip() -> None:
    device = Device(
        id="d1",
        name="fra1-rtr-01",
        primary_ip4="10.0.0.1/24",
        platform="Cisco IOS",
        network_driver="cisco_ios",
        location_path=("Europe", "fra1"),
        role="router",
        status="Active",
        device_type="ISR4331",
        manufacturer="Cisco",
        serial="SN1",
        tags=("core", "backup"),
        custom_fields=MappingProxyType({"ssh_port": 2201, "owner": None}),
    )
    again = device_from_record(device_record(device))
    assert again == device
    assert dict(again.custom_fields) == {"ssh_port": 2201, "owner": None}
    assert again.context() == device.context()

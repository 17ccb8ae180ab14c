from __future__ import annotations

import re
from typing import Any

import pytest

from lab.nautobot import NautobotLab
from service.errors import TargetResolutionError
from service.inventory.conditions import parse_inventory_tree
from service.inventory.nautobot import NautobotClient
from service.inventory.resolver import (
    InventoryResolutionError,
    resolve_all_devices,
    resolve_inventory,
)

ALL = {"fra1-rtr-01", "fra1-sw-01", "ams1-spine-01", "ams1-edge-01", "nyc1-rtr-01", "nyc1-fw-01"}


def cond(field: str, operator: str, value: str) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def group(logic: str, *items: Any, internal: str = "AND") -> dict[str, Any]:
    return {"type": "group", "logic": logic, "internalLogic": internal, "items": list(items)}


async def names(client: NautobotClient, *items: Any, logic: str = "AND") -> set[str]:
    tree = parse_inventory_tree({"type": "root", "internalLogic": logic, "items": list(items)})
    devices = await resolve_inventory(client, tree)
    assert [d.name for d in devices] == sorted(d.name for d in devices)
    return {device.name for device in devices}


POSITIVE = [
    ("name", "equals", "fra1-rtr-01", {"fra1-rtr-01"}),
    ("name", "equals", "FRA1-RTR-01", set()),
    ("name", "contains", "RTR", {"fra1-rtr-01", "nyc1-rtr-01"}),
    # A substring, not a regex: "." matches only a literal dot (no device has one).
    ("name", "contains", "fra1.", set()),
    (
        "location",
        "equals",
        "Europe",
        {"fra1-rtr-01", "fra1-sw-01", "ams1-spine-01", "ams1-edge-01"},
    ),
    ("location", "equals", "fra1", {"fra1-rtr-01", "fra1-sw-01"}),
    ("location", "contains", "ROOM", {"fra1-sw-01"}),
    ("location", "contains", "ams", {"ams1-spine-01", "ams1-edge-01"}),
    ("location", "contains", "nowhere", set()),
    ("role", "equals", "router", {"fra1-rtr-01", "nyc1-rtr-01"}),
    ("role", "equals", "unused-role", set()),
    ("status", "equals", "Planned", {"ams1-edge-01"}),
    ("tag", "equals", "core", {"fra1-rtr-01", "ams1-spine-01"}),
    ("tag", "equals", "unused", set()),
    ("device_type", "equals", "ISR4331", {"fra1-rtr-01", "nyc1-rtr-01"}),
    ("manufacturer", "equals", "Cisco", {"fra1-rtr-01", "fra1-sw-01", "nyc1-rtr-01"}),
    ("platform", "equals", "Arista EOS", {"ams1-spine-01"}),
    ("has_primary", "equals", "False", {"ams1-edge-01"}),
    ("has_primary", "equals", "true", ALL - {"ams1-edge-01"}),
    ("cf_environment", "equals", "production", {"fra1-rtr-01", "ams1-spine-01"}),
    ("cf_owner", "contains", "ops", {"fra1-rtr-01"}),
    ("cf_owner", "contains", "TEAM", {"fra1-rtr-01", "fra1-sw-01", "nyc1-rtr-01"}),
    ("cf_ssh_port", "equals", "2201", {"nyc1-rtr-01"}),
]


@pytest.mark.parametrize(("field", "operator", "value", "expected"), POSITIVE)
async def test_field_and_operator_mapping(
    nautobot: NautobotClient, field: str, operator: str, value: str, expected: set[str]
) -> None:
    assert await names(nautobot, cond(field, operator, value)) == expected


@pytest.mark.parametrize(("field", "operator", "value", "expected"), POSITIVE)
async def test_negated_operators_are_the_exact_complement(
    nautobot: NautobotClient, field: str, operator: str, value: str, expected: set[str]
) -> None:
    negated = {"equals": "not_equals", "contains": "not_contains"}[operator]
    assert await names(nautobot, cond(field, negated, value)) == ALL - expected


async def test_root_internal_logic_and_or(nautobot: NautobotClient) -> None:
    router = cond("role", "equals", "router")
    europe = cond("location", "equals", "Europe")
    assert await names(nautobot, router, europe) == {"fra1-rtr-01"}
    assert await names(nautobot, router, europe, logic="OR") == {
        "fra1-rtr-01",
        "fra1-sw-01",
        "ams1-spine-01",
        "ams1-edge-01",
        "nyc1-rtr-01",
    }


async def test_not_group_subtracts(nautobot: NautobotClient) -> None:
    result = await names(
        nautobot,
        cond("location", "equals", "Europe"),
        group(
            "NOT", cond("tag", "equals", "core"), cond("status", "equals", "Planned"), internal="OR"
        ),
    )
    assert result == {"fra1-sw-01"}


async def test_leading_not_group_means_all_devices_except(nautobot: NautobotClient) -> None:
    assert await names(nautobot, group("NOT", cond("location", "equals", "Europe"))) == {
        "nyc1-rtr-01",
        "nyc1-fw-01",
    }


async def test_nested_groups_follow_their_own_logic(nautobot: NautobotClient) -> None:
    # tag=backup AND ((role=router AND NOT (status=Offline)) OR (platform=Cisco NX-OS))
    result = await names(
        nautobot,
        cond("tag", "equals", "backup"),
        group(
            "AND",
            group(
                "AND",
                cond("role", "equals", "router"),
                group("NOT", cond("status", "equals", "Offline")),
            ),
            group("OR", cond("platform", "equals", "Cisco NX-OS")),
        ),
    )
    assert result == {"fra1-rtr-01", "fra1-sw-01"}


async def test_group_or_joins_its_predecessor(nautobot: NautobotClient) -> None:
    result = await names(
        nautobot,
        cond("role", "equals", "spine"),
        group("OR", cond("location", "equals", "nyc1"), cond("role", "equals", "firewall")),
    )
    assert result == {"ams1-spine-01", "nyc1-fw-01"}


async def test_an_empty_intermediate_set_stays_empty(nautobot: NautobotClient) -> None:
    # The origin replaced an empty running set by the next operation's result, widening
    # "no such device AND router" to "every router".
    assert (
        await names(
            nautobot, cond("name", "equals", "no-such-device"), cond("role", "equals", "router")
        )
        == set()
    )
    assert (
        await names(
            nautobot,
            cond("name", "equals", "no-such-device"),
            group("AND", cond("role", "equals", "router")),
        )
        == set()
    )


async def test_values_cannot_inject_graphql(nautobot: NautobotClient) -> None:
    assert await names(nautobot, cond("name", "equals", 'x"]) { id } q: devices(name: ["')) == set()
    assert await names(nautobot, cond("cf_owner", "contains", '\\"}\n#')) == set()


async def test_payload_of_resolved_devices(nautobot: NautobotClient) -> None:
    tree = parse_inventory_tree({"type": "root", "items": [cond("name", "equals", "fra1-sw-01")]})
    [device] = await resolve_inventory(nautobot, tree)
    assert device.primary_ip4 == "127.0.0.1/32"
    assert device.primary_host == "127.0.0.1"
    assert (device.platform, device.network_driver) == ("Cisco NX-OS", "cisco_nxos")
    assert device.location_path == ("Europe", "fra1", "fra1-room1")
    assert device.location == "fra1-room1"
    assert (device.role, device.status, device.device_type, device.manufacturer) == (
        "leaf",
        "Active",
        "N9K-C93180YC-EX",
        "Cisco",
    )
    assert device.tags == ("backup",)
    assert dict(device.custom_fields) == {"environment": "staging", "owner": "dc-team"}
    context = device.context()
    assert context["location"]["parent"]["name"] == "fra1"
    assert context["custom_fields"]["owner"] == "dc-team"


async def test_all_devices_is_an_explicit_call(nautobot: NautobotClient) -> None:
    devices = await resolve_all_devices(nautobot)
    assert {d.name for d in devices} == ALL
    edge = next(d for d in devices if d.name == "ams1-edge-01")
    assert edge.primary_ip4 is None
    assert edge.primary_host is None


async def test_paging_collects_every_page(nautobot_lab: NautobotLab) -> None:
    async with NautobotClient(nautobot_lab.url, "t0ken", page_size=4) as client:
        devices = await resolve_all_devices(client)
    # 6 devices take a full page, a short one, and the empty page that ends paging.
    assert len(devices) == 6
    assert nautobot_lab.requests == 3
    offsets = [int(re.search(r"offset: (\d+)", q).group(1)) for q in nautobot_lab.queries]  # type: ignore[union-attr]
    assert offsets == [0, 4, 6]
    assert all("limit: 4" in query for query in nautobot_lab.queries)


async def test_a_value_naming_nothing_fails_the_resolution(nautobot: NautobotClient) -> None:
    tree = parse_inventory_tree(
        {
            "type": "root",
            "items": [cond("role", "equals", "router"), cond("location", "not_equals", "fra9")],
        }
    )
    with pytest.raises(InventoryResolutionError) as caught:
        await resolve_inventory(nautobot, tree)
    assert isinstance(caught.value, TargetResolutionError)
    assert "location not_equals 'fra9'" in caught.value.message
    assert "fra9 is not one of the available choices" in caught.value.message


async def test_a_failing_not_clause_fails_instead_of_widening(
    nautobot: NautobotClient,
) -> None:
    tree = parse_inventory_tree(
        {
            "type": "root",
            "items": [
                cond("role", "equals", "router"),
                group("NOT", cond("tag", "equals", "no-such-tag")),
            ],
        }
    )
    with pytest.raises(InventoryResolutionError, match="no-such-tag"):
        await resolve_inventory(nautobot, tree)


@pytest.mark.parametrize("failure", ["http500", "token", "timeout", "unreachable"])
async def test_nautobot_failures_raise_clear_errors(
    nautobot_lab: NautobotLab, failure: str
) -> None:
    url, token, timeout = nautobot_lab.url, "t0ken", 5.0
    expected = {
        "http500": "HTTP 500",
        "token": "refused the API token",
        "timeout": "did not answer within 0.2 s",
        "unreachable": "cannot reach Nautobot",
    }[failure]
    if failure == "http500":
        nautobot_lab.fail_next = 1
    elif failure == "token":
        token = "wrong"
    elif failure == "timeout":
        nautobot_lab.latency, timeout = 1.0, 0.2
    else:
        await nautobot_lab.stop()
    tree = parse_inventory_tree({"type": "root", "items": [cond("role", "equals", "router")]})
    async with NautobotClient(url, token, timeout=timeout) as client:
        with pytest.raises(InventoryResolutionError, match=expected):
            await resolve_inventory(client, tree)
        if failure == "http500":
            nautobot_lab.fail_next = 1
        with pytest.raises(InventoryResolutionError, match=expected):
            await resolve_all_devices(client)

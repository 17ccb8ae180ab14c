from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lab.nautobot import NautobotLab
from lab.nautobot_inventory import LAB_PLATFORMS, LabInventory, generate_inventory


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NautobotLab]:
    async with NautobotLab(generate_inventory(60), token="secret") as running:
        yield running


async def graphql(lab: NautobotLab, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{lab.url}/api/graphql/",
            json={"query": query, "variables": variables},
            headers={"Authorization": "Token secret"},
        )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_generated_inventory_shape() -> None:
    inventory = generate_inventory(60)
    assert len(inventory.devices) == 60
    assert len({d.name for d in inventory.devices}) == 60
    assert {p.network_driver for p in inventory.platforms} == {p[1] for p in LAB_PLATFORMS}
    room = inventory.location("fra1-room1")
    assert [loc.name for loc in room.lineage()] == ["fra1-room1", "fra1", "Europe"]
    assert {d.location.location_type for d in inventory.devices} == {"Site", "Room"}
    assert {d.status for d in inventory.devices} == {"Active", "Planned"}
    assert "ssh_port" in inventory.custom_fields
    assert {d.custom_fields["environment"] for d in inventory.devices} == {"production", "staging"}


@pytest.mark.parametrize("header", [None, "Token wrong", "Bearer secret"])
async def test_token_auth_as_nautobot(lab: NautobotLab, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{lab.url}/api/graphql/", json={"query": "{ devices { id } }"}, headers=headers
        )
    assert response.status_code == 403
    assert "detail" in response.json()


async def test_query_shape_variables_aliases_and_nesting(lab: NautobotLab) -> None:
    body = await graphql(
        lab,
        """
        query Devices($names: [String], $limit: Int) {
          routers: devices(name__ic: $names, role: ["router"], limit: $limit) {
            name
            primary_ip4 { address host mask_length }
            platform { name network_driver }
            location { name location_type { name } parent { name parent { name } } }
            tags { name }
            _custom_field_data
          }
        }
        """,
        names=["FRA1"],
        limit=2,
    )
    routers = body["data"]["routers"]
    assert len(routers) == 2
    first = routers[0]
    assert first["name"].startswith("fra1-router")
    assert first["primary_ip4"] == {
        "address": "127.0.0.1/32",
        "host": "127.0.0.1",
        "mask_length": 32,
    }
    assert first["platform"] == {"name": "Cisco IOS", "network_driver": "cisco_ios"}
    assert first["location"]["parent"]["name"] in ("fra1", "Europe")
    assert {"name": "backup"} in first["tags"]
    assert set(first["_custom_field_data"]) == {"environment", "owner"}


async def test_location_filter_includes_descendants(lab: NautobotLab) -> None:
    europe = await graphql(lab, '{ devices(location: ["Europe"]) { location { name } } }')
    names = {d["location"]["name"] for d in europe["data"]["devices"]}
    assert names == {"fra1", "fra1-room1", "ams1", "ams1-room1", "lon1", "lon1-room1"}
    room = await graphql(lab, '{ devices(location: "fra1-room1") { location { name } } }')
    assert {d["location"]["name"] for d in room["data"]["devices"]} == {"fra1-room1"}


async def test_paging_is_stable_and_complete(lab: NautobotLab) -> None:
    seen: list[str] = []
    for offset in range(0, 80, 25):
        body = await graphql(lab, f"{{ devices(limit: 25, offset: {offset}) {{ id }} }}")
        seen += [d["id"] for d in body["data"]["devices"]]
    assert len(seen) == len(set(seen)) == 60


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ devices(role: ["nope"]) { id } }', "nope is not one of the available choices"),
        ('{ devices(location: ["fra9"]) { id } }', "fra9 is not one of the available choices"),
        ('{ devices(cf_colour: "red") { id } }', 'Unknown argument "cf_colour"'),
        ("{ devices { id colour } }", 'Cannot query field "colour"'),
        ("{ circuits { id } }", 'Cannot query field "circuits"'),
        ("mutation { x }", "only query operations"),
        ("{ devices(name: [) { id } }", "Syntax Error"),
    ],
)
async def test_errors_are_graphql_errors(lab: NautobotLab, query: str, message: str) -> None:
    body = await graphql(lab, query)
    assert body["data"] is None
    assert message in body["errors"][0]["message"]


async def test_empty_list_filters_nothing_as_in_nautobot(lab: NautobotLab) -> None:
    body = await graphql(lab, "{ devices(location: []) { id } }")
    assert len(body["data"]["devices"]) == 60


async def test_choice_filters_and_custom_fields() -> None:
    inventory = LabInventory()
    inventory.add_location("s1", "Site")
    inventory.add_platform("Arista EOS", "arista_eos", "Arista")
    inventory.device_types["DCS"] = "Arista"
    inventory.add_device(
        "a",
        location="s1",
        role="spine",
        platform="Arista EOS",
        device_type="DCS",
        tags=["core"],
        custom_fields={"owner": "Net Team", "ssh_port": 2222},
    )
    inventory.add_device(
        "b",
        location="s1",
        role="leaf",
        platform=None,
        device_type="DCS",
        primary_ip4=None,
    )
    async with NautobotLab(inventory, token="secret") as lab:
        cases = {
            '{ devices(tags: ["core"]) { name } }': ["a"],
            '{ devices(platform: ["Arista EOS"]) { name } }': ["a"],
            '{ devices(manufacturer: ["Arista"]) { name } }': ["a", "b"],
            "{ devices(has_primary_ip: false) { name } }": ["b"],
            '{ devices(cf_owner__ic: "team") { name } }': ["a"],
            '{ devices(cf_ssh_port: "2222") { name } }': ["a"],
            '{ devices(status: ["Active"], device_type: ["DCS"]) { name } }': ["a", "b"],
        }
        for query, expected in cases.items():
            body = await graphql(lab, query)
            assert [d["name"] for d in body["data"]["devices"]] == expected, query
        device_id = inventory.device("b").id
        single = await graphql(
            lab, f'{{ device(id: "{device_id}") {{ name platform {{ name }} }} }}'
        )
        assert single["data"]["device"] == {"name": "b", "platform": None}


async def test_failure_knobs() -> None:
    async with NautobotLab(generate_inventory(3), token="secret") as lab:
        lab.fail_next = 1
        async with httpx.AsyncClient() as client:
            url, headers = f"{lab.url}/api/graphql/", {"Authorization": "Token secret"}
            first = await client.post(url, json={"query": "{ devices { id } }"}, headers=headers)
            second = await client.post(url, json={"query": "{ devices { id } }"}, headers=headers)
        assert (first.status_code, second.status_code) == (500, 200)
        assert lab.requests == 1

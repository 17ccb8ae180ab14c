"""/api/inventories: the grammar enforced on save, previews through the Nautobot lab."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from executors.services import Services
from service.db.security_models import Role
from service.inventory.cache import DeviceCache
from service.inventory.device import device_from_graphql
from tests.device_lab import DeviceLab, condition, eight_device_lab, lab_api, tree_of

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]

EDGE_OR_SPINE = tree_of(condition("role", "equals", "edge"), condition("role", "equals", "spine"))
EDGE_OR_SPINE["internalLogic"] = "OR"


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


@pytest.fixture
async def lab_client(services: Services, device_lab: DeviceLab) -> AsyncIterator[httpx.AsyncClient]:
    async with lab_api(services, device_lab) as http:
        yield http


async def test_crud_and_private_scope(client: httpx.AsyncClient, as_role: AsRole) -> None:
    created = await client.post(
        "/api/inventories", json={"name": "edges", "tree": EDGE_OR_SPINE, "is_global": False}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["tree"]["internalLogic"] == "OR"
    assert body["owner"] == "admin"
    inventory_id = body["id"]
    duplicate = await client.post(
        "/api/inventories", json={"name": "edges", "tree": EDGE_OR_SPINE, "is_global": False}
    )
    assert duplicate.status_code == 409
    renamed = await client.patch(f"/api/inventories/{inventory_id}", json={"name": "edge+spine"})
    assert renamed.json()["name"] == "edge+spine"
    async with as_role(Role.OPERATOR, "otto") as other:
        assert (await other.get(f"/api/inventories/{inventory_id}")).status_code == 404
        assert (await other.get("/api/inventories")).json()["total"] == 0
    assert (await client.delete(f"/api/inventories/{inventory_id}")).status_code == 204
    assert (await client.get(f"/api/inventories/{inventory_id}")).status_code == 404


@pytest.mark.parametrize(
    ("item", "path", "message"),
    [
        (condition("colour", "equals", "red"), "root.items[1].field", "unknown field 'colour'"),
        (condition("role", "regex", "x"), "root.items[1].operator", "Input should be"),
        (condition("role", "contains", "x"), "root.items[1].operator", "not supported"),
        (
            {"type": "group", "logic": "XOR", "items": [condition("name", "equals", "x")]},
            "root.items[1].logic",
            "Input should be",
        ),
        ({"type": "group", "items": []}, "root.items[1].items", "at least 1 item"),
    ],
)
async def test_a_tree_outside_the_grammar_is_a_422_naming_the_item(
    client: httpx.AsyncClient, item: dict[str, object], path: str, message: str
) -> None:
    tree = tree_of(condition("role", "equals", "leaf"), item)
    response = await client.post("/api/inventories", json={"name": "bad", "tree": tree})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_inventory"
    assert error["details"][0]["path"] == path
    assert message in error["details"][0]["msg"]
    assert (await client.get("/api/inventories")).json()["total"] == 0


async def test_preview_of_saved_and_unsaved_trees(
    lab_client: httpx.AsyncClient, services: Services, device_lab: DeviceLab
) -> None:
    unsaved = await lab_client.post("/api/inventories/preview", json={"tree": EDGE_OR_SPINE})
    assert unsaved.status_code == 200, unsaved.text
    body = unsaved.json()
    assert body["count"] == 4
    assert [d["name"] for d in body["devices"]] == [
        "ams1-edge-0007",
        "ams1-spine-0006",
        "fra1-edge-0003",
        "fra1-spine-0002",
    ]
    assert body["devices"][0]["network_driver"] == "juniper_junos"
    assert (body["cached"], body["cache_age_seconds"]) == (False, None)

    not_fra1 = tree_of(
        condition("tag", "equals", "core"),
        {"type": "group", "logic": "NOT", "items": [condition("location", "equals", "fra1")]},
    )
    saved = await lab_client.post("/api/inventories", json={"name": "core", "tree": not_fra1})
    previewed = await lab_client.post(f"/api/inventories/{saved.json()['id']}/preview")
    assert [d["name"] for d in previewed.json()["devices"]] == [
        "ams1-router-0004",
        "ams1-spine-0006",
    ]

    # With a fresh cache the records come from it, and the preview says so.
    payloads = [device.payload() for device in device_lab.inventory.devices]
    await DeviceCache(services.redis, ttl=60).write([device_from_graphql(p) for p in payloads])
    cached = (
        await lab_client.post("/api/inventories/preview", json={"tree": EDGE_OR_SPINE})
    ).json()
    assert cached["cached"] is True
    assert cached["cache_age_seconds"] is not None
    assert cached["devices"] == body["devices"]
    refreshed = await lab_client.post(
        "/api/inventories/preview", params={"refresh": "true"}, json={"tree": EDGE_OR_SPINE}
    )
    assert refreshed.json()["cached"] is False


async def test_a_preview_nautobot_refuses_says_why(
    lab_client: httpx.AsyncClient, device_lab: DeviceLab
) -> None:
    tree = tree_of(condition("platform", "equals", "Commodore 64"))
    response = await lab_client.post("/api/inventories/preview", json={"tree": tree})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "inventory_resolution_failed"
    assert "condition platform equals 'Commodore 64'" in error["message"]

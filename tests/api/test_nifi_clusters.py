"""NiFi clusters over the API: membership with exactly one primary, kept by the database."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from executors.services import Services


async def make_instances(client: httpx.AsyncClient, *names: str) -> list[int]:
    ids = []
    for name in names:
        response = await client.post(
            "/api/nifi/instances", json={"name": name, "url": f"http://{name}:8080/nifi"}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def members(*ids: int, primary: int) -> list[dict[str, object]]:
    return [{"instance_id": i, "is_primary": i == primary} for i in ids]


async def test_create_with_members_and_read_back(client: httpx.AsyncClient) -> None:
    a, b, c = await make_instances(client, "a", "b", "c")
    created = await client.post(
        "/api/nifi/clusters",
        json={
            "name": "prod",
            "hierarchy_attribute": "location",
            "hierarchy_value": "dc1",
            "members": members(a, b, c, primary=b),
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["primary_instance_id"] == b
    assert [m["instance_id"] for m in body["members"]] == [b, a, c]
    assert body["members"][0]["url"] == "http://b:8080/nifi-api"
    assert (body["hierarchy_attribute"], body["hierarchy_value"]) == ("location", "dc1")
    instance = (await client.get(f"/api/nifi/instances/{b}")).json()
    assert (instance["cluster_id"], instance["is_primary"]) == (body["id"], True)
    listed = (await client.get("/api/nifi/instances", params={"cluster_id": body["id"]})).json()
    assert listed["total"] == 3
    assert (await client.get("/api/nifi/clusters")).json()["items"][0]["name"] == "prod"


@pytest.mark.parametrize(
    ("member_list", "message"),
    [
        ([{"instance_id": 1}, {"instance_id": 2}], "exactly one member must be primary, 0 are"),
        (
            [{"instance_id": 1, "is_primary": True}, {"instance_id": 2, "is_primary": True}],
            "exactly one member must be primary, 2 are",
        ),
        (
            [{"instance_id": 1, "is_primary": True}, {"instance_id": 1}],
            "an instance is listed twice",
        ),
    ],
)
async def test_membership_is_validated(
    client: httpx.AsyncClient, member_list: list[dict[str, object]], message: str
) -> None:
    await make_instances(client, "x1", "x2")
    response = await client.post("/api/nifi/clusters", json={"name": "c", "members": member_list})
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["loc"] == ["body", "members"]
    assert message in detail["msg"]


async def test_unknown_instance_and_instance_of_another_cluster(client: httpx.AsyncClient) -> None:
    a, b = await make_instances(client, "a", "b")
    unknown = await client.post(
        "/api/nifi/clusters", json={"name": "c", "members": members(a, 999, primary=a)}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["loc"] == ["body", "members", 1, "instance_id"]
    first = await client.post(
        "/api/nifi/clusters", json={"name": "one", "members": members(a, primary=a)}
    )
    assert first.status_code == 201
    stolen = await client.post(
        "/api/nifi/clusters", json={"name": "two", "members": members(a, b, primary=b)}
    )
    assert stolen.status_code == 409
    assert "'a'" in stolen.json()["error"]["message"]
    assert (await client.get(f"/api/nifi/instances/{a}")).json()["cluster_id"] == first.json()["id"]


async def test_patch_moves_the_primary_and_replaces_members(client: httpx.AsyncClient) -> None:
    a, b, c = await make_instances(client, "a", "b", "c")
    cluster = (
        await client.post(
            "/api/nifi/clusters", json={"name": "k", "members": members(a, b, primary=a)}
        )
    ).json()
    moved = await client.patch(
        f"/api/nifi/clusters/{cluster['id']}", json={"members": members(b, c, primary=c)}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["primary_instance_id"] == c
    assert {m["instance_id"] for m in moved.json()["members"]} == {b, c}
    left = (await client.get(f"/api/nifi/instances/{a}")).json()
    assert (left["cluster_id"], left["is_primary"]) == (None, False)
    renamed = await client.patch(f"/api/nifi/clusters/{cluster['id']}", json={"description": "d"})
    assert renamed.json()["primary_instance_id"] == c  # members untouched when left out
    events = (await client.get("/api/audit", params={"resource_type": "nifi_cluster"})).json()
    assert [e["details"].get("fields") for e in events["items"]][:2] == [
        ["description"],
        ["members"],
    ]


async def test_deleting_keeps_instances_and_primary_needs_a_successor(
    client: httpx.AsyncClient,
) -> None:
    a, b = await make_instances(client, "a", "b")
    cluster = (
        await client.post(
            "/api/nifi/clusters", json={"name": "d", "members": members(a, b, primary=a)}
        )
    ).json()
    refused = await client.delete(f"/api/nifi/instances/{a}")
    assert refused.status_code == 409
    assert (await client.delete(f"/api/nifi/instances/{b}")).status_code == 204
    assert (await client.delete(f"/api/nifi/clusters/{cluster['id']}")).status_code == 204
    survivor = (await client.get(f"/api/nifi/instances/{a}")).json()
    assert (survivor["cluster_id"], survivor["is_primary"]) == (None, False)
    assert (await client.get(f"/api/nifi/clusters/{cluster['id']}")).status_code == 404


async def test_the_database_keeps_exactly_one_primary(
    client: httpx.AsyncClient, services: Services
) -> None:
    a, b = await make_instances(client, "a", "b")
    cluster = (
        await client.post(
            "/api/nifi/clusters", json={"name": "db", "members": members(a, b, primary=a)}
        )
    ).json()
    cid = cluster["id"]
    # A second primary: the partial unique index refuses at once.
    with pytest.raises(IntegrityError, match="uq_nifi_instances_cluster_primary"):
        async with services.sessions.begin() as session:
            await session.execute(
                text(f"UPDATE nifi_instances SET is_primary = true WHERE id = {b}")
            )
    # No primary left: the deferred trigger refuses at commit.
    with pytest.raises(IntegrityError, match="exactly one primary"):
        async with services.sessions.begin() as session:
            await session.execute(
                text(f"UPDATE nifi_instances SET is_primary = false WHERE id = {a}")
            )
    # Moving the primary inside one transaction is fine.
    async with services.sessions.begin() as session:
        await session.execute(text(f"UPDATE nifi_instances SET is_primary = false WHERE id = {a}"))
        await session.execute(text(f"UPDATE nifi_instances SET is_primary = true WHERE id = {b}"))
    assert (await client.get(f"/api/nifi/clusters/{cid}")).json()["primary_instance_id"] == b

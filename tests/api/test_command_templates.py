"""/api/command-templates: versioned on every content change, syntax checked on save."""

from __future__ import annotations

import asyncio

import httpx


async def test_every_content_change_is_a_new_version(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/command-templates",
        json={"name": "interfaces", "content": "show interfaces {{ nautobot.name }}\n"},
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["version"] == 1
    url = f"/api/command-templates/{template['id']}"

    renamed = await client.patch(url, json={"description": "per device"})
    assert renamed.json()["version"] == 1
    changed = await client.patch(
        url, json={"content": "show interfaces status\n", "change_note": "shorter"}
    )
    assert changed.json()["version"] == 2
    same = await client.patch(url, json={"content": "show interfaces status\n"})
    assert same.json()["version"] == 2

    versions = (await client.get(f"{url}/versions")).json()
    assert [(v["version"], v["content"], v["change_note"]) for v in versions] == [
        (2, "show interfaces status\n", "shorter"),
        (1, "show interfaces {{ nautobot.name }}\n", None),
    ]
    assert versions[0]["created_by"] == "admin"


async def test_concurrent_edits_number_their_versions_in_turn(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/command-templates", json={"name": "t", "content": "a\n"})
    url = f"/api/command-templates/{created.json()['id']}"
    responses = await asyncio.gather(
        *(client.patch(url, json={"content": f"show {i}\n"}) for i in range(5))
    )
    assert sorted(r.json()["version"] for r in responses) == [2, 3, 4, 5, 6]
    versions = (await client.get(f"{url}/versions")).json()
    assert [v["version"] for v in versions] == [6, 5, 4, 3, 2, 1]


async def test_a_template_that_does_not_parse_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/command-templates",
        json={"name": "broken", "content": "show version\n{% for x in %}\n"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("template syntax error on line 2")
    assert error["details"][0]["line"] == 2
    created = await client.post("/api/command-templates", json={"name": "ok", "content": "x\n"})
    patched = await client.patch(
        f"/api/command-templates/{created.json()['id']}", json={"content": "{{ unclosed"}
    )
    assert patched.status_code == 422
    assert (await client.get(f"/api/command-templates/{created.json()['id']}")).json()[
        "version"
    ] == 1

"""/api/git-repositories: remotes, branches and checkout paths checked when saved."""

from __future__ import annotations

import httpx
import pytest


async def test_crud(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/git-repositories",
        json={
            "name": "configs",
            "url": "https://git.example.net/netops/configs.git",
            "branch": "backups/main",
            "local_path": "netops/configs",
        },
    )
    assert created.status_code == 201, created.text
    repository = created.json()
    assert (repository["branch"], repository["author_name"]) == ("backups/main", "opsjobs")
    url = f"/api/git-repositories/{repository['id']}"
    clash = await client.post(
        "/api/git-repositories", json={"name": "other", "local_path": "netops/configs"}
    )
    assert clash.status_code == 409
    patched = await client.patch(url, json={"url": "git@git.example.net:netops/configs.git"})
    assert patched.json()["url"] == "git@git.example.net:netops/configs.git"
    assert (await client.get("/api/git-repositories")).json()["total"] == 1
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "https://netops:hunter2@git.example.net/c.git", "carries a password"),
        ("url", "file:///srv/git/configs.git", "file:// remotes are disabled"),
        ("url", "--upload-pack=touch /tmp/x", "expected an https://"),
        ("url", "ext::sh -c touch% /tmp/x", "expected an https://"),
        ("local_path", "../../etc", "'..' segment"),
        ("local_path", "/var/lib/configs", "is absolute"),
        ("branch", "-f", "not a valid branch name"),
        ("branch", "main..evil", "not a valid branch name"),
    ],
)
async def test_unsafe_fields_are_a_422(
    client: httpx.AsyncClient, field: str, value: str, message: str
) -> None:
    response = await client.post("/api/git-repositories", json={"name": "r", field: value})
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["loc"] == ["body", field]
    assert message in detail["msg"]


async def test_the_credential_must_exist_and_be_visible(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/git-repositories", json={"name": "r", "credential_id": 42})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"loc": ["body", "credential_id"], "msg": "credential 42 does not exist"}
    ]
    credential = await client.post(
        "/api/credentials",
        json={"name": "git", "type": "token", "username": "bot", "token": "t0k", "is_global": True},
    )
    created = await client.post(
        "/api/git-repositories", json={"name": "r", "credential_id": credential.json()["id"]}
    )
    assert created.status_code == 201

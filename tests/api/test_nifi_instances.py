"""NiFi instances over the API: validation, credentials by id only, the connection test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.nifi import FailureMode, NifiLab, ServerTls
from lab.nifi_tls import generate_pki
from service.db.security_models import Role

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]
PASSWORD = "nifi-pass-4d1e"


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        running.add_instance("secured", users={"admin": PASSWORD}, version="1.27.0")
        running.add_instance("open")
        yield running


async def create_credential(
    http: httpx.AsyncClient, name: str = "nifi-admin", *, is_global: bool = True, **fields: Any
) -> int:
    body: dict[str, Any] = {
        "name": name,
        "type": "username_password",
        "username": "admin",
        "password": PASSWORD,
    }
    body.update(is_global=is_global, **fields)
    response = await http.post("/api/credentials", json=body)
    assert response.status_code == 201, response.text
    credential_id: int = response.json()["id"]
    return credential_id


def errors_by_field(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {
        ".".join(str(part) for part in item["loc"][1:]): item["msg"]
        for item in response.json()["error"]["details"]
    }


async def test_create_normalises_the_url_and_lists(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/nifi/instances", json={"name": "n1", "url": "https://nifi-1.example:8443/nifi/"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == "https://nifi-1.example:8443/nifi-api"
    assert (body["auth_mode"], body["cluster_id"], body["is_primary"]) == ("none", None, False)
    assert (body["connect_timeout"], body["read_timeout"], body["verify_tls"]) == (5.0, 30.0, True)
    listed = (await client.get("/api/nifi/instances")).json()
    assert [item["name"] for item in listed["items"]] == ["n1"]
    assert listed["total"] == 1
    duplicate = await client.post(
        "/api/nifi/instances", json={"name": "n1", "url": "http://other:8080"}
    )
    assert duplicate.status_code == 409


async def test_invalid_input_names_each_field(client: httpx.AsyncClient) -> None:
    bad = await client.post(
        "/api/nifi/instances",
        json={"name": "", "url": "ftp://x", "auth_mode": "kerberos", "read_timeout": 0},
    )
    assert set(errors_by_field(bad)) == {"name", "url", "auth_mode", "read_timeout"}
    missing = await client.post(
        "/api/nifi/instances",
        json={"name": "oidc", "url": "http://x", "auth_mode": "oidc_client_credentials"},
    )
    assert set(errors_by_field(missing)) == {"credential_id", "oidc_discovery_url"}
    cert = await client.post(
        "/api/nifi/instances",
        json={"name": "cert", "url": "https://x", "auth_mode": "client_certificate"},
    )
    assert set(errors_by_field(cert)) == {"client_cert_path"}


async def test_credential_must_exist_fit_and_be_visible(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    ssh = await client.post(
        "/api/credentials",
        json={"name": "ssh", "type": "ssh_password", "username": "u", "password": "p"},
    )
    body = {"name": "n", "url": "http://x", "auth_mode": "username_password"}
    wrong_type = await client.post(
        "/api/nifi/instances", json={**body, "credential_id": ssh.json()["id"]}
    )
    assert "username_password" in errors_by_field(wrong_type)["credential_id"]
    unknown = await client.post("/api/nifi/instances", json={**body, "credential_id": 999})
    assert errors_by_field(unknown)["credential_id"] == "credential 999 does not exist"
    async with as_role(Role.OPERATOR, "olga") as olga:
        private = await create_credential(olga, "olga-nifi", is_global=False)
    async with as_role(Role.OPERATOR, "mallory") as mallory:
        refused = await mallory.post("/api/nifi/instances", json={**body, "credential_id": private})
        assert errors_by_field(refused)["credential_id"] == f"credential {private} does not exist"
    # Nobody may redirect an instance holding a credential they may not use.
    created = await client.post("/api/nifi/instances", json={**body, "credential_id": private})
    assert created.status_code == 201
    async with as_role(Role.OPERATOR, "mallory") as mallory:
        moved = await mallory.patch(
            f"/api/nifi/instances/{created.json()['id']}", json={"url": "http://evil.example"}
        )
        assert moved.status_code == 403
        (detail,) = moved.json()["error"]["details"]
        assert detail == {
            "loc": ["body", "url"],
            "msg": f"NiFi instance {created.json()['id']} holds a credential mallory may not use",
        }


async def test_patch_keeps_what_is_left_out_and_refuses_nulls(client: httpx.AsyncClient) -> None:
    created = (
        await client.post(
            "/api/nifi/instances", json={"name": "p", "url": "http://a:8080", "read_timeout": 12}
        )
    ).json()
    patched = await client.patch(
        f"/api/nifi/instances/{created['id']}", json={"url": "http://b:8080/nifi-api/"}
    )
    assert patched.status_code == 200
    assert (patched.json()["url"], patched.json()["read_timeout"]) == (
        "http://b:8080/nifi-api",
        12.0,
    )
    nulls = await client.patch(
        f"/api/nifi/instances/{created['id']}", json={"name": None, "read_timeout": None}
    )
    assert set(errors_by_field(nulls)) == {"name", "read_timeout"}
    events = (await client.get("/api/audit", params={"resource_type": "nifi_instance"})).json()
    assert [event["action"] for event in events["items"]] == ["update", "create"]
    assert (await client.get("/api/nifi/instances/999")).status_code == 404


async def test_connection_test_reports_version_and_auth(
    client: httpx.AsyncClient, lab: NifiLab
) -> None:
    credential = await create_credential(client)
    secured = lab.instances["secured"]
    created = await client.post(
        "/api/nifi/instances",
        json={
            "name": "secured",
            "url": secured.url,
            "auth_mode": "username_password",
            "credential_id": credential,
        },
    )
    instance_id = created.json()["id"]
    report = await client.post(f"/api/nifi/instances/{instance_id}/test")
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["ok"], body["reachable"], body["version"]) == (True, True, "1.27.0")
    assert body["auth"] == {"mode": "username_password", "ok": True}
    assert body["error"] is None
    assert PASSWORD not in report.text

    await client.patch(f"/api/credentials/{credential}", json={"password": "wrong"})
    refused = (await client.post(f"/api/nifi/instances/{instance_id}/test")).json()
    assert (refused["ok"], refused["reachable"], refused["auth"]["ok"]) == (False, True, False)
    assert refused["error"]


async def test_connection_test_of_an_instance_that_is_down(
    client: httpx.AsyncClient, lab: NifiLab
) -> None:
    node = lab.instances["open"]
    created = await client.post("/api/nifi/instances", json={"name": "open", "url": node.url})
    instance_id = created.json()["id"]
    assert (await client.post(f"/api/nifi/instances/{instance_id}/test")).json()["ok"] is True
    node.fail(FailureMode.DOWN)
    try:
        body = (await client.post(f"/api/nifi/instances/{instance_id}/test")).json()
    finally:
        node.recover()
    assert (body["ok"], body["reachable"], body["version"]) == (False, False, None)
    assert "503" in body["error"]
    events = (await client.get("/api/audit", params={"resource_type": "nifi_instance"})).json()
    assert [event["action"] for event in events["items"]][:2] == ["test", "test"]


async def test_viewer_reads_but_cannot_test(client: httpx.AsyncClient, as_role: AsRole) -> None:
    created = await client.post("/api/nifi/instances", json={"name": "v", "url": "http://v"})
    async with as_role(Role.VIEWER, "vera") as viewer:
        assert (await viewer.get("/api/nifi/instances")).json()["total"] == 1
        tested = await viewer.post(f"/api/nifi/instances/{created.json()['id']}/test")
        assert tested.status_code == 403


async def test_oidc_instance_uses_the_credential_as_client_id_and_secret(
    client: httpx.AsyncClient, lab: NifiLab
) -> None:
    lab.add_oidc_client("opsjobs-client", "oidc-secret-91c2")
    node = lab.add_instance("oidc-node", oidc=True)
    credential = await create_credential(
        client, "oidc", username="opsjobs-client", password="oidc-secret-91c2"
    )
    created = await client.post(
        "/api/nifi/instances",
        json={
            "name": "oidc-node",
            "url": node.url,
            "auth_mode": "oidc_client_credentials",
            "oidc_discovery_url": lab.oidc_discovery_url,
            "credential_id": credential,
        },
    )
    assert created.status_code == 201, created.text
    body = (await client.post(f"/api/nifi/instances/{created.json()['id']}/test")).json()
    assert (body["ok"], body["auth"]) == (True, {"mode": "oidc_client_credentials", "ok": True})


async def test_client_certificate_instance_with_a_key_passphrase(
    client: httpx.AsyncClient, lab: NifiLab, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pki = generate_pki(tmp_path, client_key_password="key-pass-77")
    lab.add_instance("mtls-node")
    tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    url = await lab.serve_dedicated("mtls-node", tls=tls)
    passphrase = await client.post(
        "/api/credentials",
        json={"name": "mtls-key", "type": "token", "token": "key-pass-77", "is_global": True},
    )
    base = {
        "url": url,
        "auth_mode": "client_certificate",
        "client_cert_path": str(pki.client_cert),
        "client_key_path": str(pki.client_key),
        "ca_bundle": str(pki.ca_cert),
    }
    with_key = await client.post(
        "/api/nifi/instances",
        json={**base, "name": "mtls", "credential_id": passphrase.json()["id"]},
    )
    body = (await client.post(f"/api/nifi/instances/{with_key.json()['id']}/test")).json()
    assert (body["ok"], body["reachable"], body["auth"]["ok"]) == (True, True, True)
    without_key = await client.post("/api/nifi/instances", json={**base, "name": "mtls-nokey"})
    failed = await client.post(f"/api/nifi/instances/{without_key.json()['id']}/test")
    assert failed.status_code == 200
    assert (failed.json()["ok"], failed.json()["auth"]["ok"]) == (False, False)
    assert failed.json()["error"].startswith("TLS set-up failed")
    # An encrypted key without its passphrase fails; it never prompts on the terminal.
    assert "pass phrase" not in capfd.readouterr().err


async def test_a_credential_in_use_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    credential = await create_credential(client)
    created = await client.post(
        "/api/nifi/instances",
        json={
            "name": "uses-it",
            "url": "http://x",
            "auth_mode": "username_password",
            "credential_id": credential,
        },
    )
    refused = await client.delete(f"/api/credentials/{credential}")
    assert refused.status_code == 409
    assert "in use" in refused.json()["error"]["message"]
    assert (await client.delete(f"/api/nifi/instances/{created.json()['id']}")).status_code == 204
    assert (await client.delete(f"/api/credentials/{credential}")).status_code == 204

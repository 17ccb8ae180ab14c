"""TLS material over the API: ``tls_keystore`` credentials (PKCS#12 or PEM, opened on
save), keystores and truststores on instances by file or credential, proxy URLs — and a
stored PEM identity used for mutual TLS by a real run and the connection test, its
secrets appearing nowhere."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from executors.services import Services
from lab.nifi import LabFlow, NifiLab, ServerTls
from lab.nifi_tls import LabPki, generate_pki, write_pkcs12
from tests.executors.nifi_fixtures import run_job
from tests.executors.test_nifi_secrets import redis_contents, stored_run_data

KEY_PASSWORD = "canary-7c1f-key-password"
STORE_PASSWORD = "canary-0a9e-store-password"


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return generate_pki(tmp_path_factory.mktemp("pki"), client_key_password=KEY_PASSWORD)


async def keystore_credential(
    client: httpx.AsyncClient, name: str, **secrets: str
) -> httpx.Response:
    return await client.post(
        "/api/credentials",
        json={"name": name, "type": "tls_keystore", "is_global": True, **secrets},
    )


def field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["loc"][-1]: item["msg"] for item in response.json()["error"]["details"]}


async def test_keystore_credentials_must_open(
    client: httpx.AsyncClient, pki: LabPki, tmp_path: Path
) -> None:
    stores = write_pkcs12(pki, tmp_path, STORE_PASSWORD)
    p12 = base64.b64encode(stores.keystore.read_bytes()).decode()
    created = await keystore_credential(client, "p12", keystore=p12, password=STORE_PASSWORD)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["has_keystore"], body["has_password"]) == (True, True)
    assert "keystore" not in body

    wrong = await keystore_credential(client, "p12-wrong", keystore=p12, password="nope")
    assert "PKCS#12 store this password opens" in field_errors(wrong)["keystore"]
    garbage = await keystore_credential(client, "garbage", keystore="not a store!")
    assert "PEM text or base64" in field_errors(garbage)["keystore"]
    empty = await keystore_credential(client, "empty")
    assert "give keystore or password" in field_errors(empty)["keystore"]
    password_only = await keystore_credential(client, "for-a-file", password=STORE_PASSWORD)
    assert password_only.status_code == 201
    assert password_only.json()["has_keystore"] is False
    foreign = await client.post(
        "/api/credentials",
        json={"name": "x", "type": "ssh_password", "password": "p", "keystore": p12},
    )
    assert "not used by a ssh_password credential" in field_errors(foreign)["keystore"]


async def test_instance_store_settings_are_checked(client: httpx.AsyncClient, pki: LabPki) -> None:
    pem = pki.client_cert.read_text() + pki.client_key.read_text()
    holding = (
        await keystore_credential(client, "holding", keystore=pem, password=KEY_PASSWORD)
    ).json()
    password_only = (await keystore_credential(client, "pw-only", password="x")).json()
    base = {"url": "https://nifi.example:8443", "auth_mode": "client_certificate"}

    async def errors(**fields: Any) -> dict[str, str]:
        response = await client.post("/api/nifi/instances", json={"name": "n", **base, **fields})
        return field_errors(response)

    assert (
        "needs client_cert_path, keystore_path or keystore_credential_id"
        in (await errors())["client_cert_path"]
    )
    assert (
        "holds the store"
        in (await errors(keystore_credential_id=holding["id"], keystore_path="/etc/ks.p12"))[
            "keystore_path"
        ]
    )
    assert (
        "holds a password"
        in (await errors(keystore_credential_id=password_only["id"]))["keystore_path"]
    )
    assert (
        "PEM files or a keystore"
        in (await errors(client_cert_path="/c.pem", keystore_credential_id=holding["id"]))[
            "client_cert_path"
        ]
    )
    assert (
        "does not exist"
        in (await errors(keystore_path="/k", truststore_credential_id=424242))[
            "truststore_credential_id"
        ]
    )
    user_pass = (
        await client.post(
            "/api/credentials",
            json={"name": "up", "type": "username_password", "password": "p", "is_global": True},
        )
    ).json()
    assert (
        "takes a tls_keystore credential"
        in (await errors(keystore_credential_id=user_pass["id"]))["keystore_credential_id"]
    )
    assert (
        "user name or password"
        in (await errors(keystore_path="/k", proxy_url="http://u:p@proxy:3128"))["proxy_url"]
    )
    assert (
        "http:// or https://"
        in (await errors(keystore_path="/k", proxy_url="socks5://p"))["proxy_url"]
    )
    saved = await client.post(
        "/api/nifi/instances",
        json={
            "name": "with-file-stores",
            **base,
            "keystore_path": "/etc/nifi/keystore.p12",
            "keystore_credential_id": password_only["id"],
            "truststore_path": "/etc/nifi/truststore.p12",
            "proxy_url": "http://proxy.corp:3128",
            "oidc_scope": "api://nifi/.default",
        },
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["proxy_url"] == "http://proxy.corp:3128"
    in_use = await client.delete(f"/api/credentials/{password_only['id']}")
    assert in_use.status_code == 409


async def test_stored_pem_identity_for_mutual_tls_travels_nowhere(
    client: httpx.AsyncClient,
    services: Services,
    lab: NifiLab,
    pki: LabPki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lab.add_instance("stored-mtls", flow=LabFlow(), anonymous=False)
    tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    url = await lab.serve_dedicated("stored-mtls", tls=tls)
    key_pem = pki.client_key.read_text()
    identity = (
        await keystore_credential(
            client, "mtls-id", keystore=pki.client_cert.read_text() + key_pem, password=KEY_PASSWORD
        )
    ).json()
    trust = (await keystore_credential(client, "mtls-ca", keystore=pki.ca_cert.read_text())).json()
    instance = await client.post(
        "/api/nifi/instances",
        json={
            "name": "stored-mtls",
            "url": url,
            "auth_mode": "client_certificate",
            "keystore_credential_id": identity["id"],
            "truststore_credential_id": trust["id"],
        },
    )
    assert instance.status_code == 201, instance.text
    cluster = await client.post(
        "/api/nifi/clusters",
        json={
            "name": "mtls",
            "members": [{"instance_id": instance.json()["id"], "is_primary": True}],
        },
    )
    tested = await client.post(f"/api/nifi/instances/{instance.json()['id']}/test")
    run = await run_job(client, services, "check_queues", {"cluster_ids": [cluster.json()["id"]]})

    assert tested.json()["ok"] is True, tested.text
    assert (run["status"], run["outcome"]) == ("completed", "ok")
    assert run["result"]["clusters"][0]["answered_by"] == "stored-mtls"
    seen = repr(
        [
            tested.text,
            run,
            (await client.get(f"/api/credentials/{identity['id']}")).text,
            (await client.get("/api/nifi/instances")).text,
            (await client.get("/api/audit")).text,
            caplog.text,
        ]
    )
    secret_line = key_pem.splitlines()[1]
    redis = await redis_contents(services)
    stored = await stored_run_data(services)
    for secret in (KEY_PASSWORD, secret_line):
        assert secret not in seen
        assert secret.encode() not in redis
        assert secret not in stored


async def test_connection_test_names_tls_failures_and_nodes_not_ready(
    client: httpx.AsyncClient, lab: NifiLab, pki: LabPki, tmp_path: Path
) -> None:
    stranger = generate_pki(tmp_path / "stranger", ca_common_name="stranger CA")
    lab.add_instance("foreign-tls")
    url = await lab.serve_dedicated(
        "foreign-tls", tls=ServerTls(stranger.server_cert, stranger.server_key)
    )
    starting = lab.add_instance("starting")
    starting.initializing = True
    results = {}
    for name, instance_url, extra in (
        ("foreign-tls", url, {"ca_bundle": str(pki.ca_cert)}),
        ("starting", starting.url, {}),
    ):
        created = await client.post(
            "/api/nifi/instances", json={"name": name, "url": instance_url, **extra}
        )
        assert created.status_code == 201, created.text
        results[name] = (
            await client.post(f"/api/nifi/instances/{created.json()['id']}/test")
        ).json()
    tls = results["foreign-tls"]
    assert (tls["ok"], tls["reachable"]) == (False, False)
    assert "TLS: the server's certificate is not signed by a CA" in tls["error"]
    not_ready = results["starting"]
    assert (not_ready["ok"], not_ready["reachable"], not_ready["auth"]["ok"]) == (False, True, None)
    assert "HTTP 409: The Flow Controller is initializing the Data Flow." in not_ready["error"]

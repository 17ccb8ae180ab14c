"""Credentials: write-only secrets, expiry status, key rotation without downtime."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from executors.services import Services
from service.access.credentials import credential_status, load_credential, reencrypt_all
from service.db.security_models import Credential
from service.secrets import KeyRing, KeyStore

CANARY = "canary-7f3c1e9b-do-not-leak"


async def all_redis_bytes(services: Services) -> bytes:
    chunks = []
    async for key in services.redis.scan_iter():
        chunks.append(key)
        kind = (await services.redis.type(key)).decode()
        if kind == "string":
            chunks.append(await services.redis.get(key) or b"")
        elif kind == "stream":
            chunks.append(repr(await services.redis.xrange(key)).encode())
        elif kind == "zset":
            chunks.append(repr(await services.redis.zrange(key, 0, -1)).encode())
    return b"".join(chunks)


async def test_secrets_are_write_only(
    client: httpx.AsyncClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await client.post(
        "/api/credentials",
        json={
            "name": "core-switches",
            "type": "ssh_key",
            "username": "netops",
            "ssh_key": CANARY,
            "passphrase": CANARY + "-pass",
            "valid_until": (datetime.now(UTC).date() + timedelta(days=3)).isoformat(),
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["has_ssh_key"] is True
    assert body["has_ssh_passphrase"] is True
    assert body["has_password"] is False
    assert body["status"] == "expiring"
    responses = [
        created.text,
        (await client.get(f"/api/credentials/{body['id']}")).text,
        (await client.get("/api/credentials")).text,
        (await client.get("/api/audit")).text,
    ]
    await client.post("/api/job-runs", json={"job_type": "diag.echo"})
    assert all(CANARY not in text for text in responses)
    assert CANARY not in caplog.text
    assert CANARY.encode() not in await all_redis_bytes(services)
    async with services.sessions() as session:
        row = await session.get_one(Credential, body["id"])
    assert CANARY.encode() not in row.ciphertext

    decrypted = await load_credential(services.sessions, services.keys, body["id"])
    assert decrypted.ssh_key == CANARY
    assert CANARY not in repr(decrypted)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "ssh_password"}, "password", "required for a ssh_password credential"),
        (
            {"type": "token", "token": "t", "password": "p"},
            "password",
            "not used by a token credential",
        ),
        ({"type": "kerberos"}, "type", "Input should be"),
    ],
)
async def test_invalid_credentials_are_422(
    client: httpx.AsyncClient, body: dict[str, str], field: str, message: str
) -> None:
    response = await client.post("/api/credentials", json={"name": "x", **body})
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["loc"][-1] == field
    assert message in detail["msg"]


async def test_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    body = {"name": "dup", "type": "token", "token": "t", "is_global": True}
    assert (await client.post("/api/credentials", json=body)).status_code == 201
    again = await client.post("/api/credentials", json=body)
    assert again.status_code == 409


async def test_update_replaces_secrets(client: httpx.AsyncClient, services: Services) -> None:
    created = (
        await client.post(
            "/api/credentials",
            json={"name": "nifi", "type": "username_password", "username": "u", "password": "a"},
        )
    ).json()
    updated = await client.patch(
        f"/api/credentials/{created['id']}", json={"password": "b", "description": "lab"}
    )
    assert updated.status_code == 200
    assert updated.json()["description"] == "lab"
    decrypted = await load_credential(services.sessions, services.keys, created["id"])
    assert decrypted.password == "b"
    assert (await client.delete(f"/api/credentials/{created['id']}")).status_code == 204
    assert (await client.get(f"/api/credentials/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("offset", "status"),
    [(None, "unknown"), (-1, "expired"), (0, "expiring"), (7, "expiring"), (8, "active")],
)
def test_credential_status(offset: int | None, status: str) -> None:
    today = date(2026, 11, 28)
    valid_until = None if offset is None else today + timedelta(days=offset)
    assert credential_status(valid_until, today) == status


async def test_rotation_keeps_running_readers_working(
    client: httpx.AsyncClient, services: Services, tmp_path: object
) -> None:
    ids = [
        (
            await client.post(
                "/api/credentials", json={"name": f"c{i}", "type": "token", "token": f"secret-{i}"}
            )
        ).json()["id"]
        for i in range(3)
    ]
    ring = KeyRing.load(services.settings.secrets.key_file)
    old_reader = KeyStore(ring)  # a worker started before the rotation
    rotated = ring.with_new_active_key()
    rotated.save()
    try:
        assert await reencrypt_all(services.sessions, KeyStore(rotated)) >= 3
        for i, credential_id in enumerate(ids):
            decrypted = await load_credential(services.sessions, old_reader, credential_id)
            assert decrypted.token == f"secret-{i}"
        assert old_reader.ring.active == rotated.active
        key_file = json.loads(services.settings.secrets.key_file.read_text())
        assert set(key_file["keys"]) == set(rotated.keys)
    finally:
        ring.save()


@pytest.mark.parametrize("field", ["name", "is_active"])
async def test_null_for_a_required_field_is_422(client: httpx.AsyncClient, field: str) -> None:
    created = (
        await client.post("/api/credentials", json={"name": "n", "type": "token", "token": "t"})
    ).json()
    response = await client.patch(f"/api/credentials/{created['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"][-1] == field

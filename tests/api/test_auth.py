"""Every route demands a token and the right permission; private resources stay private."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from service.api.app import create_app
from service.db.security_models import Role
from service.settings import Settings

OPEN_PATHS = {"/healthz", "/readyz"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Routes a viewer may call although they are not GETs: read-only computations with a body.
# Previews only read (their POST carries an unsaved spec or tree).
VIEWER_MAY = frozenset(
    {
        ("POST", "/api/job-schedules/preview"),
        ("POST", "/api/inventories/preview"),
        ("POST", "/api/inventories/1/preview"),
    }
)

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]


def api_routes(settings: Settings) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI schema, path parameters set to 1."""
    routes = []
    for path, operations in create_app(settings).openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        routes.extend((method.upper(), concrete) for method in sorted(operations))
    return routes


def test_the_walk_covers_the_api(settings: Settings) -> None:
    paths = {path for _, path in api_routes(settings)}
    assert {"/api/job-runs", "/api/credentials", "/api/tokens", "/api/audit"} <= paths


async def test_no_token_is_401_everywhere(settings: Settings, anonymous: httpx.AsyncClient) -> None:
    for method, path in api_routes(settings):
        response = await anonymous.request(method, path, json={})
        if path in OPEN_PATHS:
            assert response.status_code == 200, (method, path)
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_bad_token_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(
        "/api/job-runs", headers={"Authorization": "Bearer ojt_not-a-real-token"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid or revoked token"


async def test_viewer_cannot_mutate(settings: Settings, as_role: AsRole) -> None:
    async with as_role(Role.VIEWER, "vera") as viewer:
        for method, path in api_routes(settings):
            if method not in MUTATING or (method, path) in VIEWER_MAY:
                continue
            response = await viewer.request(method, path, json={})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        assert (await viewer.get("/api/job-runs")).status_code == 200


async def test_operator_cannot_manage_tokens_or_read_audit(as_role: AsRole) -> None:
    async with as_role(Role.OPERATOR, "otto") as operator:
        assert (await operator.get("/api/tokens")).status_code == 403
        assert (await operator.get("/api/audit")).status_code == 403
        created = await operator.post("/api/job-runs", json={"job_type": "diag.echo"})
        assert created.status_code == 202
        assert created.json()["executed_by"] == "otto"


async def test_revoked_token_stops_working(client: httpx.AsyncClient, api_url: str) -> None:
    created = await client.post("/api/tokens", json={"name": "ci", "role": "viewer"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("ojt_")
    listed = (await client.get("/api/tokens")).json()["items"]
    assert all("token" not in item for item in listed)
    assert token not in str(listed)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
        assert (await http.get("/api/job-runs")).status_code == 200
        revoked = await client.post(f"/api/tokens/{created.json()['id']}/revoke")
        assert revoked.json()["revoked_at"] is not None
        assert (await http.get("/api/job-runs")).status_code == 401


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
async def test_private_credentials_are_invisible_to_others(
    as_role: AsRole, role: Role, client: httpx.AsyncClient
) -> None:
    async with as_role(Role.OPERATOR, "olga") as owner:
        private = await owner.post(
            "/api/credentials",
            json={"name": "olga-ssh", "type": "ssh_password", "username": "o", "password": "pw"},
        )
        assert private.status_code == 201
        credential_id = private.json()["id"]
    async with as_role(role, "mallory") as other:
        assert (await other.get(f"/api/credentials/{credential_id}")).status_code == 404
        listed = (await other.get("/api/credentials")).json()
        assert credential_id not in [item["id"] for item in listed["items"]]
        if role is Role.OPERATOR:
            response = await other.delete(f"/api/credentials/{credential_id}")
            assert response.status_code == 404
    assert (await client.get(f"/api/credentials/{credential_id}")).status_code == 200


async def test_actions_are_audited(client: httpx.AsyncClient) -> None:
    run = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    await client.post(f"/api/job-runs/{run['id']}/cancel")
    events = (await client.get("/api/audit", params={"resource_type": "job_run"})).json()
    assert [(event["action"], event["actor"]) for event in events["items"]] == [
        ("cancel", "admin"),
        ("run", "admin"),
    ]
    assert events["items"][0]["source_ip"] == "127.0.0.1"

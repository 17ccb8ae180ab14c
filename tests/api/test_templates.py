"""``/api/job-templates``: validated configs, visibility, deletion rules, run-now."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from executors.services import Services
from service.db.models import JobSchedule
from service.db.security_models import Role
from tests.workers import drain

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]


async def make_template(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    body = {"name": "progress", "job_type": "diag.progress", "config": {"steps": 2, "delay": 0}}
    body.update(fields)
    response = await client.post("/api/job-templates", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_types_list_config_schemas(client: httpx.AsyncClient) -> None:
    types = {
        item["job_type"]: item for item in (await client.get("/api/job-templates/types")).json()
    }
    assert {"diag.echo", "diag.progress", "diag.fail"} <= set(types)
    progress = types["diag.progress"]
    assert progress["config_schema"]["properties"]["steps"]["minimum"] == 1
    assert progress["default_queue"] == "t-default"


async def test_create_validates_config_and_type(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/api/job-templates", json={"name": "x", "job_type": "nope"})
    assert unknown.status_code == 422
    assert "diag.echo" in unknown.json()["error"]["details"]["valid_types"]

    bad = await client.post(
        "/api/job-templates",
        json={"name": "x", "job_type": "diag.progress", "config": {"steps": 0}},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["config", "steps"]

    created = await make_template(client, config={"steps": 3})
    assert created["config"] == {"steps": 3, "delay": 1.0}
    assert created["owner"] == "admin"
    again = await client.post(
        "/api/job-templates", json={"name": "progress", "job_type": "diag.echo"}
    )
    assert again.status_code == 409


async def test_overrides_honour_zero_and_run_now(
    client: httpx.AsyncClient, services: Services
) -> None:
    template = await make_template(client, config={"steps": 2, "delay": 0.5})
    response = await client.post(
        f"/api/job-templates/{template['id']}/run", json={"parameters": {"delay": 0}}
    )
    assert response.status_code == 202
    run = response.json()
    assert run["parameters"] == {"steps": 2, "delay": 0.0}
    assert run["template_id"] == template["id"]
    assert run["triggered_by"] == "manual"
    assert run["job_name"] == "progress"
    await drain(services.settings)
    finished = (await client.get(f"/api/job-runs/{run['id']}")).json()
    assert finished["status"] == "completed"

    bad = await client.post(
        f"/api/job-templates/{template['id']}/run", json={"parameters": {"steps": -1}}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["parameters", "steps"]


async def test_update_revalidates(client: httpx.AsyncClient) -> None:
    template = await make_template(client)
    updated = await client.patch(
        f"/api/job-templates/{template['id']}", json={"config": {"steps": 9}, "max_attempts": 3}
    )
    assert updated.status_code == 200
    assert updated.json()["config"]["steps"] == 9
    assert updated.json()["max_attempts"] == 3
    bad = await client.patch(f"/api/job-templates/{template['id']}", json={"config": {"x": 1}})
    assert bad.status_code == 422


async def test_delete_refuses_while_schedules_use_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    template = await make_template(client)
    async with services.sessions.begin() as session:
        session.add(
            JobSchedule(
                job_identifier="nightly",
                template_id=template["id"],
                schedule_type="daily",
                time_of_day="02:00",
            )
        )
    refused = await client.delete(f"/api/job-templates/{template['id']}")
    assert refused.status_code == 409
    assert len(refused.json()["error"]["details"]["schedule_ids"]) == 1
    run = (await client.post(f"/api/job-templates/{template['id']}/run", json={})).json()
    deleted = await client.delete(
        f"/api/job-templates/{template['id']}", params={"cascade": "true"}
    )
    assert deleted.status_code == 204
    assert (await client.get(f"/api/job-templates/{template['id']}")).status_code == 404
    kept = (await client.get(f"/api/job-runs/{run['id']}")).json()
    assert kept["template_id"] is None
    assert kept["job_name"] == "progress"


async def test_private_templates_belong_to_their_owner(as_role: AsRole) -> None:
    async with as_role(Role.OPERATOR, "olga") as olga:
        private = await make_template(olga, name="olga-only")
        public = await make_template(olga, name="shared", is_global=True)
    async with as_role(Role.OPERATOR, "otto") as otto:
        assert (await otto.get(f"/api/job-templates/{private['id']}")).status_code == 404
        names = [item["name"] for item in (await otto.get("/api/job-templates")).json()["items"]]
        assert names == ["shared"]
        run = await otto.post(f"/api/job-templates/{private['id']}/run", json={})
        assert run.status_code == 404
        change = await otto.patch(f"/api/job-templates/{public['id']}", json={"description": "x"})
        assert change.status_code == 403
        assert (
            await otto.post(f"/api/job-templates/{public['id']}/run", json={})
        ).status_code == 202

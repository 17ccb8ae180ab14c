"""``/api/job-runs`` and the probes: shapes, filters, pagination and clear 4xx errors."""

from __future__ import annotations

import httpx
import pytest

from executors.services import Services
from service.db.models import TriggeredBy
from service.db.paging import EXACT_TOTAL_LIMIT
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest


async def test_probes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_unknown_job_type_lists_valid_types(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/job-runs", json={"job_type": "nope"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_job_type"
    assert "diag.echo" in error["details"]["valid_types"]
    assert "nope" in error["message"]


async def test_invalid_parameters_name_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/job-runs", json={"job_type": "diag.progress", "parameters": {"steps": 0}}
    )
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details[0]["loc"] == ["parameters", "steps"]
    assert "greater than or equal to 1" in details[0]["msg"]

    response = await client.post(
        "/api/job-runs", json={"job_type": "diag.echo", "parameters": {"bogus": 1}}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["parameters", "bogus"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ["body", "job_type"]),
        ({"job_type": "diag.echo", "timeout_seconds": 0}, ["body", "timeout_seconds"]),
        ({"job_type": "diag.echo", "parameters": []}, ["body", "parameters"]),
        ({"job_type": "diag.echo", "extra": 1}, ["body", "extra"]),
    ],
)
async def test_malformed_bodies_are_422(
    client: httpx.AsyncClient, body: dict[str, object], field: list[str]
) -> None:
    response = await client.post("/api/job-runs", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == field


async def test_not_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/job-runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_missing_run_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/job-runs/999", "/api/job-runs/999/progress", "/api/job-runs/999/targets"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.post("/api/job-runs/999/cancel")).status_code == 404


async def test_list_filters_and_pagination(client: httpx.AsyncClient, services: Services) -> None:
    def request(job_type: str, parameters: dict[str, object], trigger: TriggeredBy) -> RunRequest:
        return RunRequest(
            job_type=job_type,
            job_name=job_type,
            queue=services.settings.queues.default,
            parameters=parameters,
            triggered_by=trigger,
        )

    ids = await lifecycle.enqueue_runs(
        services.sessions,
        services.redis,
        [request("diag.echo", {"message": str(i)}, TriggeredBy.API) for i in range(5)]
        + [request("diag.fail", {}, TriggeredBy.MANUAL) for _ in range(3)],
    )
    page = (await client.get("/api/job-runs", params={"page_size": 3})).json()
    assert page["total"] == 8
    assert page["total_pages"] == 3
    assert [item["id"] for item in page["items"]] == sorted(ids, reverse=True)[:3]
    last = (await client.get("/api/job-runs", params={"page_size": 3, "page": 3})).json()
    assert len(last["items"]) == 2

    fails = (await client.get("/api/job-runs", params={"job_type": "diag.fail"})).json()
    assert fails["total"] == 3
    both = (await client.get("/api/job-runs", params={"job_type": "diag.fail,diag.echo"})).json()
    assert both["total"] == 8
    manual = (await client.get("/api/job-runs", params={"triggered_by": "manual"})).json()
    assert {item["job_type"] for item in manual["items"]} == {"diag.fail"}
    pending = (await client.get("/api/job-runs", params={"status": "pending,running"})).json()
    assert pending["total"] == 8
    assert (await client.get("/api/job-runs", params={"status": "completed"})).json()["total"] == 0


async def test_text_filter_searches_name_and_who_started_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    ids = await lifecycle.enqueue_runs(
        services.sessions,
        services.redis,
        [
            RunRequest(
                job_type="diag.echo",
                job_name=name,
                queue=services.settings.queues.default,
                parameters={},
                triggered_by=TriggeredBy.MANUAL,
                executed_by=who,
            )
            for name, who in (("core 100% check", "ana"), ("edge_backup", "ben"), ("x", "score"))
        ],
    )

    async def found(text: str) -> list[int]:
        page = (await client.get("/api/job-runs", params={"q": text})).json()
        return sorted(item["id"] for item in page["items"])

    assert await found("CORE") == [ids[0], ids[2]]  # the name, or who started it
    assert await found("100%") == [ids[0]]  # % and _ are plain characters
    assert await found("e_b") == [ids[1]]
    assert await found("%") == [ids[0]]
    too_long = await client.get("/api/job-runs", params={"q": "x" * 201})
    assert too_long.status_code == 422


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "pending,bogus"}, "status"),
        ({"triggered_by": "cron"}, "triggered_by"),
        ({"template_id": "x"}, "template_id"),
        ({"page_size": "101"}, "page_size"),
        ({"page": "0"}, "page"),
    ],
)
async def test_bad_list_filters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/job-runs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"][-1] == field


async def test_progress_endpoint_shape(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    progress = (await client.get(f"/api/job-runs/{created['id']}/progress")).json()
    assert progress == {
        "run_id": created["id"],
        "status": "pending",
        "outcome": None,
        "current": None,
        "total": None,
        "percent": None,
        "message": None,
    }


async def test_totals_are_exact_up_to_the_limit_then_a_lower_bound(
    client: httpx.AsyncClient, services: Services
) -> None:
    def echo(i: int) -> RunRequest:
        return RunRequest(
            job_type="diag.echo",
            job_name="diag.echo",
            queue=services.settings.queues.default,
            parameters={"message": str(i)},
            triggered_by=TriggeredBy.API if i else TriggeredBy.MANUAL,
        )

    async with services.sessions.begin() as session:
        await lifecycle.insert_runs(session, [echo(i) for i in range(EXACT_TOTAL_LIMIT + 1)])

    every = (await client.get("/api/job-runs", params={"page_size": 100})).json()
    assert every["total"] == EXACT_TOTAL_LIMIT
    assert every["total_exact"] is False
    assert every["total_pages"] == EXACT_TOTAL_LIMIT // 100
    assert len(every["items"]) == 100
    # Pages past the counted ones still answer: the total is "at least".
    beyond = (await client.get("/api/job-runs", params={"page_size": 100, "page": 11})).json()
    assert len(beyond["items"]) == 1

    one = (await client.get("/api/job-runs", params={"triggered_by": "manual"})).json()
    assert (one["total"], one["total_exact"]) == (1, True)

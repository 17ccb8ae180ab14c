"""Retry policies through the API: on templates and ad-hoc runs, validated field by field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from executors.services import Services
from tests.api.test_templates import make_template

DEFAULT_POLICY = {
    "max_attempts": 1,
    "backoff_seconds": 0.0,
    "backoff_factor": 2.0,
    "max_backoff_seconds": 3600.0,
    "on": ["lost"],
}


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "invalid_input"
    return [item["loc"] for item in body["error"]["details"]]


@pytest.mark.parametrize(
    ("retry", "loc"),
    [
        ({"on": ["failed", "sometimes"]}, ["body", "retry", "on", 1]),
        ({"on": ["failed", "failed"]}, ["body", "retry", "on"]),
        ({"max_attempts": 0}, ["body", "retry", "max_attempts"]),
        ({"max_attempts": 11}, ["body", "retry", "max_attempts"]),
        ({"backoff_seconds": -1}, ["body", "retry", "backoff_seconds"]),
        ({"max_backoff_seconds": -0.5}, ["body", "retry", "max_backoff_seconds"]),
        ({"backoff_factor": 0.5}, ["body", "retry", "backoff_factor"]),
        ({"backoff_seconds": 1e12}, ["body", "retry", "backoff_seconds"]),
        ({"jitter": True}, ["body", "retry", "jitter"]),
        ({"on": "failed"}, ["body", "retry", "on"]),
    ],
)
async def test_an_invalid_policy_is_a_422_naming_its_field(
    client: httpx.AsyncClient, retry: dict[str, Any], loc: list[Any]
) -> None:
    run = await client.post("/api/job-runs", json={"job_type": "diag.echo", "retry": retry})
    assert loc in _locs(run)
    template = await client.post(
        "/api/job-templates", json={"name": "t", "job_type": "diag.echo", "retry": retry}
    )
    assert loc in _locs(template)


async def test_max_attempts_alone_keeps_its_meaning_and_must_agree_with_retry(
    client: httpx.AsyncClient,
) -> None:
    old_style = await make_template(client, name="old", max_attempts=3)
    assert old_style["max_attempts"] == 3
    assert old_style["retry"] == {**DEFAULT_POLICY, "max_attempts": 3}

    combined = await make_template(
        client, name="combined", max_attempts=4, retry={"on": ["failed"]}
    )
    assert combined["retry"]["max_attempts"] == 4
    assert combined["retry"]["on"] == ["failed"]

    disagree = await client.post(
        "/api/job-templates",
        json={
            "name": "x",
            "job_type": "diag.echo",
            "max_attempts": 2,
            "retry": {"max_attempts": 3},
        },
    )
    assert _locs(disagree) == [["body", "max_attempts"]]
    too_many = await client.post(
        "/api/job-templates", json={"name": "x", "job_type": "diag.echo", "max_attempts": 11}
    )
    assert _locs(too_many) == [["body", "max_attempts"]]


async def test_a_template_policy_is_shown_updated_and_copied_to_its_runs(
    client: httpx.AsyncClient, services: Services
) -> None:
    retry = {
        "max_attempts": 5,
        "backoff_seconds": 2,
        "backoff_factor": 3,
        "max_backoff_seconds": 30,
        "on": ["failed", "timeout"],
    }
    template = await make_template(client, retry=retry)
    assert template["max_attempts"] == 5
    assert template["retry"] == {
        "max_attempts": 5,
        "backoff_seconds": 2.0,
        "backoff_factor": 3.0,
        "max_backoff_seconds": 30.0,
        "on": ["failed", "timeout"],
    }
    shown = (await client.get(f"/api/job-templates/{template['id']}")).json()
    assert shown["retry"] == template["retry"]

    run = await client.post(f"/api/job-templates/{template['id']}/run", json={})
    assert run.status_code == 202, run.text
    assert run.json()["retry"] == template["retry"]
    assert run.json()["max_attempts"] == 5

    # max_attempts alone changes only the number of attempts.
    patched = await client.patch(f"/api/job-templates/{template['id']}", json={"max_attempts": 2})
    assert patched.status_code == 200, patched.text
    assert patched.json()["retry"] == {**template["retry"], "max_attempts": 2}

    # retry replaces the whole policy.
    patched = await client.patch(
        f"/api/job-templates/{template['id']}", json={"retry": {"on": ["lost", "failed"]}}
    )
    assert patched.json()["retry"] == {**DEFAULT_POLICY, "on": ["lost", "failed"]}
    reset = await client.patch(f"/api/job-templates/{template['id']}", json={"retry": {}})
    assert reset.json()["retry"] == DEFAULT_POLICY

    refused = await client.patch(f"/api/job-templates/{template['id']}", json={"retry": None})
    assert _locs(refused) == [["body", "retry"]]
    bad = await client.patch(
        f"/api/job-templates/{template['id']}", json={"retry": {"on": ["never"]}}
    )
    assert ["body", "retry", "on", 0] in _locs(bad)


async def test_an_adhoc_run_without_a_policy_shows_the_default(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    assert created["retry"] == DEFAULT_POLICY
    assert created["retry_at"] is None
    detail = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert detail["attempts"] == []
    listed = (await client.get("/api/job-runs")).json()
    assert listed["items"][0]["retry"] == DEFAULT_POLICY

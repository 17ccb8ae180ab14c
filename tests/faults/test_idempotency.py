"""A POST repeated with the same ``Idempotency-Key`` — one after another or all at once —
creates one run and answers the first answer again; another body is a 422."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy import func, select, update

from executors.services import Services
from service.db.models import JobRun, RunStatus
from service.db.security_models import IdempotencyKey, Role
from service.queue import transport
from service.worker.retention import purge_idempotency_keys
from tests.scheduling.factories import make_template
from tests.workers import drain

ECHO = {"job_type": "diag.echo", "parameters": {"message": "once"}}


async def _runs(services: Services) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(JobRun)) or 0


async def test_a_repeated_post_creates_one_run(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post("/api/job-runs", json=ECHO, headers=headers)
    again = await client.post("/api/job-runs", json=ECHO, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["queued"] is True
    assert first.json()["status"] == RunStatus.PENDING.value
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    created = await _runs(services)
    assert created == 1, f"runs created by 2 requests with one key: {created}"
    # Without a key every request is a new run.
    await client.post("/api/job-runs", json=ECHO)
    assert await _runs(services) == 2


async def test_concurrent_requests_with_one_key_create_one_run(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Idempotency-Key": "create-concurrently"}
    answers = await asyncio.gather(
        *(client.post("/api/job-runs", json=ECHO, headers=headers) for _ in range(12))
    )
    statuses = [answer.status_code for answer in answers]
    assert statuses == [202] * 12, statuses
    bodies = {answer.json()["id"] for answer in answers}
    assert len(bodies) == 1, f"distinct runs answered: {len(bodies)}"
    created = await _runs(services)
    assert created == 1, f"runs created by 12 concurrent requests with one key: {created}"


async def test_the_same_key_with_another_body_is_a_422_naming_the_header(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Idempotency-Key": "create-2"}
    assert (await client.post("/api/job-runs", json=ECHO, headers=headers)).status_code == 202
    other = {"job_type": "diag.echo", "parameters": {"message": "twice"}}
    refused = await client.post("/api/job-runs", json=other, headers=headers)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input"
    assert "Idempotency-Key" in error["message"]
    assert error["details"][0]["loc"] == ["header", "Idempotency-Key"]
    created = await _runs(services)
    assert created == 1, f"runs created: {created}"


async def test_keys_belong_to_their_token(
    client: httpx.AsyncClient,
    services: Services,
    as_role: Callable[[Role, str], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    mine = await client.post("/api/job-runs", json=ECHO, headers=headers)
    async with as_role(Role.OPERATOR, "otto") as otto:
        theirs = await otto.post("/api/job-runs", json=ECHO, headers=headers)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert await _runs(services) == 2


async def test_template_schedule_and_retry_runs_are_created_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    template_id = await make_template(services.sessions, config={"message": "t"})
    schedule = await client.post(
        "/api/job-schedules",
        json={
            "job_identifier": "once",
            "template_id": template_id,
            "schedule_type": "daily",
            "time_of_day": "06:00",
        },
    )
    assert schedule.status_code == 201, schedule.text
    urls = [
        f"/api/job-templates/{template_id}/run",
        f"/api/job-schedules/{schedule.json()['id']}/run",
    ]
    for index, url in enumerate(urls):
        headers = {"Idempotency-Key": f"run-{index}"}
        body = {"parameters": {"message": "x"}}
        first = await client.post(url, json=body, headers=headers)
        again = await client.post(url, json=body, headers=headers)
        assert first.status_code == 202, (url, first.text)
        assert again.json() == first.json(), url
    assert await _runs(services) == 2
    await drain(services.settings)
    original = (await client.get("/api/job-runs", params={"page_size": 1})).json()["items"][0]
    retry_url = f"/api/job-runs/{original['id']}/retry"
    retries = await asyncio.gather(
        *(client.post(retry_url, headers={"Idempotency-Key": "retry-1"}) for _ in range(5))
    )
    assert {answer.status_code for answer in retries} == {202}
    assert len({answer.json()["id"] for answer in retries}) == 1
    created = await _runs(services)
    assert created == 3, f"runs after 2 runs and 5 retries with one key: {created}"


async def test_keys_are_replayed_for_24_hours_then_pruned(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Idempotency-Key": "old"}
    first = await client.post("/api/job-runs", json=ECHO, headers=headers)
    assert first.status_code == 202
    async with services.sessions.begin() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=func.now() - timedelta(hours=25))
        )
    # Expired: the key makes a new run even before retention removes it.
    second = await client.post("/api/job-runs", json=ECHO, headers=headers)
    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]
    async with services.sessions.begin() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=func.now() - timedelta(hours=25))
        )
    assert await purge_idempotency_keys(services, datetime.now(UTC)) == 1
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_a_bad_key_is_a_422(client: httpx.AsyncClient, key: str) -> None:
    refused = await client.post("/api/job-runs", json=ECHO, headers={"Idempotency-Key": key})
    assert refused.status_code == 422, refused.text
    assert "Idempotency-Key" in refused.json()["error"]["message"]


async def test_a_request_cut_off_after_its_run_was_committed_answers_with_that_run(
    client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops between the run's commit and the answer: the run's id is on the
    key (same statement as the INSERT), so the request answers 202 with it and a retry
    replays that — one run, not two."""

    async def connection_lost(*args: object, **kwargs: object) -> bool:
        raise ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(transport, "enqueue_dispatch", connection_lost)
    headers = {"Idempotency-Key": "cut-off"}
    first = await client.post("/api/job-runs", json=ECHO, headers=headers)
    monkeypatch.undo()
    again = await client.post("/api/job-runs", json=ECHO, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["queued"] is False
    assert (again.status_code, again.json()) == (202, first.json())
    created = await _runs(services)
    assert created == 1, f"runs created: {created}"


async def test_a_request_that_fails_before_its_run_frees_its_key(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Idempotency-Key": "refused-first"}
    unknown = await client.post("/api/job-runs", json={"job_type": "nope"}, headers=headers)
    assert unknown.status_code == 422
    async with services.sessions() as session:
        kept = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert kept == 0, f"keys kept by a refused request: {kept}"
    other = await client.post("/api/job-runs", json=ECHO, headers=headers)
    assert other.status_code == 202, other.text

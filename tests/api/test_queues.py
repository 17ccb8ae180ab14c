"""``/api/queues``: depth, work in progress and waiting age per queue; purging a queue."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from executors.services import Services
from service.db.models import JobRun
from service.db.security_models import Role
from service.queue import transport
from tests.workers import running_worker, wait_for_run

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]


async def queue_runs(client: httpx.AsyncClient, count: int, **body: Any) -> list[int]:
    ids = []
    for _ in range(count):
        created = await client.post("/api/job-runs", json={"job_type": "diag.echo", **body})
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    return ids


def by_name(listing: httpx.Response) -> dict[str, dict[str, Any]]:
    assert listing.status_code == 200, listing.text
    return {item["name"]: item for item in listing.json()["items"]}


async def test_depth_running_and_oldest_age(client: httpx.AsyncClient, services: Services) -> None:
    settings = services.settings
    queued = await queue_runs(client, 3)
    await queue_runs(client, 1, queue="side")
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == queued[0])
            .values(queued_at=JobRun.queued_at - timedelta(minutes=5))
        )
    queues = by_name(await client.get("/api/queues"))
    assert list(queues) == [*settings.queues.names(), "side"]
    default = queues[settings.queues.default]
    assert (default["pending"], default["running"], default["arq_jobs"]) == (3, 0, 3)
    assert default["configured"] is True
    assert 300 <= default["oldest_queued_age_seconds"] < 330
    assert queues["side"]["configured"] is False
    assert queues["side"]["pending"] == 1
    idle = queues[settings.queues.devices]
    assert (idle["pending"], idle["oldest_queued_at"], idle["oldest_queued_age_seconds"]) == (
        0,
        None,
        None,
    )


async def test_a_running_run_is_counted_as_in_progress(
    client: httpx.AsyncClient, services: Services
) -> None:
    created = await client.post(
        "/api/job-runs", json={"job_type": "diag.progress", "parameters": {"steps": 50}}
    )
    run_id = created.json()["id"]
    async with running_worker(services.settings):
        await wait_for_run(services.sessions, run_id, statuses=frozenset({"running"}))
        default = by_name(await client.get("/api/queues"))[services.settings.queues.default]
        assert (default["pending"], default["running"]) == (0, 1)
        await client.post(f"/api/job-runs/{run_id}/cancel")
        await wait_for_run(services.sessions, run_id)


async def test_purge_cancels_pending_runs_and_removes_their_jobs(
    client: httpx.AsyncClient, services: Services
) -> None:
    queue = services.settings.queues.default
    purged_ids = await queue_runs(client, 4)
    kept = await queue_runs(client, 1, queue="side")
    response = await client.post(f"/api/queues/{queue}/purge")
    assert response.status_code == 200, response.text
    assert response.json() == {"queue": queue, "cancelled": 4, "run_ids": purged_ids}
    for run_id in purged_ids:
        async with services.sessions() as session:
            run = await session.get_one(JobRun, run_id)
        assert (run.status, run.cancelled_by, run.reason) == (
            "cancelled",
            "admin",
            f"queue {queue} purged",
        )
        assert not await transport.is_queued(services.redis, run_id)
    assert await services.redis.zcard(services.keyspace.queue(queue)) == 0
    assert await transport.is_queued(services.redis, kept[0])
    queues = by_name(await client.get("/api/queues"))
    assert (queues[queue]["pending"], queues[queue]["arq_jobs"]) == (0, 0)
    assert queues["side"]["pending"] == 1
    audit = (await client.get("/api/audit", params={"resource_type": "queue"})).json()["items"]
    assert [(item["action"], item["resource_id"], item["details"]) for item in audit] == [
        ("purge", queue, {"cancelled": 4})
    ]
    # Purging again finds nothing left to cancel.
    again = await client.post(f"/api/queues/{queue}/purge")
    assert again.json()["cancelled"] == 0


async def test_purge_of_an_unknown_queue_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/queues/no-such-queue/purge")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_only_admins_purge(as_role: AsRole, services: Services) -> None:
    async with as_role(Role.OPERATOR, "otto") as operator:
        assert (await operator.get("/api/queues")).status_code == 200
        queue = services.settings.queues.default
        denied = await operator.post(f"/api/queues/{queue}/purge")
        assert denied.status_code == 403
        assert denied.json()["error"]["details"] == {"permission": "settings.queues:write"}

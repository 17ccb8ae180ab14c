"""Retrying, deleting and counting runs."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, update

from executors.services import Services
from service.db.models import JobRun, JobRunTarget, TargetStatus, TriggeredBy
from service.runs import lifecycle
from service.runs.lifecycle import RunEnd, RunRequest, RunStatus
from tests.workers import drain


async def finished_run_with_targets(services: Services) -> int:
    """A failed run with three targets, one of which succeeded."""
    request = RunRequest(
        job_type="diag.echo",
        job_name="fan-out",
        queue=services.settings.queues.default,
        parameters={"message": "x"},
        triggered_by=TriggeredBy.API,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await lifecycle.mark_running(services.sessions, run_id, "w")
    await lifecycle.replace_targets(services.sessions, run_id, [("a", "A"), ("b", "B"), ("c", "C")])
    async with services.sessions.begin() as session:
        for key, status in (("a", TargetStatus.SUCCEEDED), ("b", TargetStatus.FAILED)):
            await session.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == run_id, JobRunTarget.key == key)
                .values(status=status.value)
            )
    await lifecycle.finish_run(services.sessions, run_id, 1, RunEnd(status=RunStatus.FAILED))
    return run_id


async def test_retry_links_to_original(client: httpx.AsyncClient, services: Services) -> None:
    original = (
        await client.post("/api/job-runs", json={"job_type": "diag.echo", "parameters": {}})
    ).json()
    refused = await client.post(f"/api/job-runs/{original['id']}/retry")
    assert refused.status_code == 409  # still pending
    await drain(services.settings)
    retry = await client.post(f"/api/job-runs/{original['id']}/retry")
    assert retry.status_code == 202
    assert retry.json()["retry_of_id"] == original["id"]
    assert retry.json()["parameters"] == original["parameters"]
    # The original came through the API; the retry says it is one.
    assert (original["triggered_by"], retry.json()["triggered_by"]) == ("api", "retry")
    listed = (await client.get("/api/job-runs", params={"triggered_by": "retry"})).json()
    assert [run["id"] for run in listed["items"]] == [retry.json()["id"]]
    assert [
        run["id"]
        for run in (await client.get("/api/job-runs", params={"triggered_by": "api"})).json()[
            "items"
        ]
    ] == [original["id"]]
    await drain(services.settings)
    assert (await client.get(f"/api/job-runs/{retry.json()['id']}")).json()["status"] == (
        "completed"
    )
    none_failed = await client.post(
        f"/api/job-runs/{original['id']}/retry", params={"failed_targets_only": "true"}
    )
    assert none_failed.status_code == 409


async def test_retry_failed_targets_only(client: httpx.AsyncClient, services: Services) -> None:
    run_id = await finished_run_with_targets(services)
    retry = await client.post(
        f"/api/job-runs/{run_id}/retry", params={"failed_targets_only": "true"}
    )
    assert retry.status_code == 202
    assert retry.json()["targets"] == [{"key": "b", "name": "B"}, {"key": "c", "name": "C"}]


async def test_delete_only_finished_runs(client: httpx.AsyncClient, services: Services) -> None:
    pending = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    assert (await client.delete(f"/api/job-runs/{pending['id']}")).status_code == 409
    await drain(services.settings)
    assert (await client.delete(f"/api/job-runs/{pending['id']}")).status_code == 204
    assert (await client.get(f"/api/job-runs/{pending['id']}")).status_code == 404


async def test_bulk_delete_never_touches_active_runs(
    client: httpx.AsyncClient, services: Services
) -> None:
    done = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    await drain(services.settings)
    active = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    async with services.sessions.begin() as session:
        await session.execute(update(JobRun).values(queued_at=func.now() - timedelta(days=40)))
    refused = await client.delete(
        "/api/job-runs", params={"older_than_days": 30, "status": "pending"}
    )
    assert refused.status_code == 422
    deleted = await client.delete("/api/job-runs", params={"older_than_days": 30})
    assert deleted.json() == {"deleted": 1}
    assert (await client.get(f"/api/job-runs/{done['id']}")).status_code == 404
    assert (await client.get(f"/api/job-runs/{active['id']}")).json()["status"] == "pending"


async def test_stats(client: httpx.AsyncClient, services: Services) -> None:
    await client.post("/api/job-runs", json={"job_type": "diag.echo"})
    await client.post("/api/job-runs", json={"job_type": "diag.fail"})
    await drain(services.settings)
    await client.post("/api/job-runs", json={"job_type": "diag.echo"})
    stats = (await client.get("/api/job-runs/stats")).json()
    assert stats["total"] == 3
    assert stats["by_status"] == {"completed": 1, "failed": 1, "pending": 1}
    assert stats["by_outcome"] == {"ok": 1, "unknown": 1}
    assert stats["by_job_type"]["diag.echo"] == {"completed": 1, "pending": 1}

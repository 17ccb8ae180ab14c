"""The run pipeline end to end: API → PostgreSQL → Redis → arq worker → PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from sqlalchemy import select

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.worker import dispatch
from service.worker.context import WorkerContext
from service.worker.dispatch import dispatch_job
from tests.workers import drain, running_worker, wait_for_run


def echo_request(services: Services, message: str = "hi") -> RunRequest:
    return RunRequest(
        job_type="diag.echo",
        job_name="diag.echo",
        queue=services.settings.queues.default,
        parameters={"message": message},
        triggered_by=TriggeredBy.API,
    )


async def test_adhoc_run_is_pending_before_it_completes(
    client: httpx.AsyncClient, services: Services
) -> None:
    response = await client.post(
        "/api/job-runs", json={"job_type": "diag.echo", "parameters": {"message": "ping"}}
    )
    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "pending"
    assert created["queued_at"] is not None
    assert created["started_at"] is None
    assert await transport.is_queued(services.redis, created["id"])

    await drain(services.settings)

    run = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert run["status"] == "completed"
    assert run["outcome"] == "ok"
    assert run["result"] == {"message": "ping"}
    assert run["summary"] == "ping"
    assert run["attempt"] == 1
    assert run["duration_seconds"] is not None
    assert run["triggered_by"] == "api"
    assert not await transport.is_queued(services.redis, created["id"])


async def test_failure_keeps_partial_result(client: httpx.AsyncClient, services: Services) -> None:
    created = (
        await client.post(
            "/api/job-runs", json={"job_type": "diag.fail", "parameters": {"message": "boom"}}
        )
    ).json()
    await drain(services.settings)
    run = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert run["status"] == "failed"
    assert run["error"] == "DiagnosticFailure: boom"
    assert run["result"] == {"partial": True, "message": "boom"}
    assert run["finished_at"] is not None


async def test_cancel_while_pending(client: httpx.AsyncClient, services: Services) -> None:
    created = (await client.post("/api/job-runs", json={"job_type": "diag.echo"})).json()
    response = await client.post(f"/api/job-runs/{created['id']}/cancel")
    assert response.status_code == 202
    assert response.json() == {"run_id": created["id"], "status": "cancelled"}
    assert not await transport.is_queued(services.redis, created["id"])

    await transport.enqueue_dispatch(
        services.redis, created["id"], services.settings.queues.default
    )
    await drain(services.settings)

    run = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert run["status"] == "cancelled"
    assert run["started_at"] is None
    assert run["attempt"] == 0
    again = await client.post(f"/api/job-runs/{created['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


async def test_cancel_while_running_keeps_partial_results(
    client: httpx.AsyncClient, services: Services
) -> None:
    created = (
        await client.post(
            "/api/job-runs",
            json={"job_type": "diag.progress", "parameters": {"steps": 200, "delay": 0.02}},
        )
    ).json()
    async with running_worker(services.settings):
        await wait_for_run(services.sessions, created["id"], min_progress=3)
        response = await client.post(f"/api/job-runs/{created['id']}/cancel")
        assert response.status_code == 202
        assert response.json()["status"] == "running"
        run = await wait_for_run(services.sessions, created["id"])
    assert run.status == RunStatus.CANCELLED
    assert run.result is not None
    assert 3 <= run.result["steps_done"] < 200
    assert run.progress_current is not None
    assert run.progress_current >= 3
    assert run.cancel_requested_at is not None
    assert run.finished_at is not None


async def test_cancel_seen_through_heartbeat_without_arq_abort(services: Services) -> None:
    """A cancel request recorded in the database alone still stops the run."""
    request = RunRequest(
        job_type="diag.progress",
        job_name="diag.progress",
        queue=services.settings.queues.default,
        parameters={"steps": 500, "delay": 0.02},
        triggered_by=TriggeredBy.API,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    async with running_worker(services.settings):
        await wait_for_run(services.sessions, run_id, min_progress=2)
        async with services.sessions.begin() as session:
            run = await session.get_one(JobRun, run_id)
            run.cancel_requested_at = run.started_at
        finished = await wait_for_run(services.sessions, run_id)
    assert finished.status == RunStatus.CANCELLED
    assert finished.result is not None
    assert finished.result["steps_done"] >= 2


async def test_duplicate_delivery_executes_once(services: Services) -> None:
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, echo_request(services))
    ctx: WorkerContext = {"services": services}
    outcomes = await asyncio.gather(dispatch_job(ctx, run_id), dispatch_job(ctx, run_id))
    assert sorted(outcomes) == ["completed", "ignored"]

    # The job enqueue_run put in Redis is a further delivery of the finished run: a no-op.
    async with services.sessions() as session:
        before = await session.get_one(JobRun, run_id)
    assert await transport.is_queued(services.redis, run_id)
    await drain(services.settings)
    assert await transport.enqueue_dispatch(
        services.redis, run_id, services.settings.queues.default
    )
    await drain(services.settings)
    async with services.sessions() as session:
        after = await session.get_one(JobRun, run_id)
    assert after.status == RunStatus.COMPLETED
    assert after.attempt == 1
    assert after.finished_at == before.finished_at


async def test_timeout_fails_and_keeps_partial_result(services: Services) -> None:
    request = RunRequest(
        job_type="diag.progress",
        job_name="diag.progress",
        queue=services.settings.queues.default,
        parameters={"steps": 100, "delay": 0.05},
        triggered_by=TriggeredBy.API,
        timeout_seconds=1,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await drain(services.settings)
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == "timed out after 1 s"
    assert run.result is not None
    assert 1 <= run.result["steps_done"] < 100


async def test_many_runs_complete_in_order_of_creation(services: Services) -> None:
    requests = [echo_request(services, f"m{i}") for i in range(50)]
    run_ids = await lifecycle.enqueue_runs(services.sessions, services.redis, requests)
    await drain(services.settings)
    async with services.sessions() as session:
        rows = (await session.scalars(select(JobRun).where(JobRun.id.in_(run_ids)))).all()
    assert {row.status for row in rows} == {"completed"}
    assert sorted(row.result["message"] for row in rows if row.result) == sorted(
        f"m{i}" for i in range(50)
    )


async def test_a_waiting_run_starts_once_the_run_it_waits_for_ends(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "WAIT_RETRY_S", 0.1)
    blocking = await lifecycle.enqueue_run(
        services.sessions, services.redis, echo_request(services)
    )
    await transport.discard_job(services.redis, blocking, services.settings.queues.default)
    assert await lifecycle.mark_running(services.sessions, blocking, "elsewhere") is not None
    waiting_request = dataclasses.replace(echo_request(services), wait_for_run_id=blocking)
    waiting = await lifecycle.enqueue_run(services.sessions, services.redis, waiting_request)
    async with running_worker(services.settings):
        await asyncio.sleep(0.5)
        async with services.sessions() as session:
            assert (await session.get_one(JobRun, waiting)).status == RunStatus.PENDING
        await lifecycle.finish_run(
            services.sessions, blocking, 1, lifecycle.RunEnd(RunStatus.COMPLETED)
        )
        finished = await wait_for_run(services.sessions, waiting, within=10)
    assert finished.status == RunStatus.COMPLETED
    assert finished.started_at is not None

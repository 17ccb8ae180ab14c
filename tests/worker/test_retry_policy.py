"""Retry policies: failed, lost and timed-out attempts retried as attempts of the same run,
with backoff, kept attempts, cancellation between attempts and the reconciler's patience."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from executors.services import Services
from service.db.models import JobRun, JobRunAttempt, JobRunTarget, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.runs.retries import AttemptEnd, RetryOn, RetryPolicy, backoff_delay, schedule_retry
from service.worker.maintenance import reap_lost_runs, reconcile_pending_runs
from tests.worker.test_loss import worker_process
from tests.workers import running_worker, wait_for_run

__all__ = ["worker_process"]  # the real worker subprocess fixture, shared

FAILING_TWICE = {"message": "flapping", "succeed_from_attempt": 3}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _attempt_rows(services: Services, run_id: int) -> list[JobRunAttempt]:
    async with services.sessions() as session:
        rows = await session.scalars(
            select(JobRunAttempt)
            .where(JobRunAttempt.run_id == run_id)
            .order_by(JobRunAttempt.attempt)
        )
        return list(rows.all())


async def _wait_pending_for_retry(services: Services, run_id: int, attempt: int) -> JobRun:
    """Until the run is pending between attempts with ``attempt`` kept."""
    async with asyncio.timeout(20):
        while True:
            async with services.sessions() as session:
                run = await session.get_one(JobRun, run_id, populate_existing=True)
            if run.status == RunStatus.PENDING and run.attempt == attempt and run.retry_at:
                return run
            assert run.status in (RunStatus.PENDING, RunStatus.RUNNING), run.status
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("attempt", "base", "factor", "cap", "expected"),
    [
        (1, 0.0, 2.0, 60.0, 0.0),
        (1, 1.5, 2.0, 60.0, 1.5),
        (2, 1.5, 2.0, 60.0, 3.0),
        (3, 1.5, 2.0, 60.0, 6.0),
        (4, 10.0, 3.0, 60.0, 60.0),
        (2, 5.0, 1.0, 60.0, 5.0),
        (10, 86_400.0, 100.0, 3600.0, 3600.0),
        (3, 2.0, 2.0, 0.0, 0.0),
    ],
)
def test_backoff_is_base_times_factor_to_the_attempt_capped(
    attempt: int, base: float, factor: float, cap: float, expected: float
) -> None:
    assert backoff_delay(attempt, base, factor, cap) == expected


def test_the_default_policy_retries_lost_workers_only_and_is_stored_as_null() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 1
    assert [failure.value for failure in policy.on] == ["lost"]
    assert policy.stored() is None
    assert RetryPolicy(max_attempts=4).stored() is None
    custom = RetryPolicy(max_attempts=3, backoff_seconds=2, on=[RetryOn.FAILED, RetryOn.TIMEOUT])
    assert custom.stored() == {
        "backoff_seconds": 2.0,
        "backoff_factor": 2.0,
        "max_backoff_seconds": 3600.0,
        "on": ["failed", "timeout"],
    }
    assert RetryPolicy.of(3, custom.stored()) == custom


async def test_a_run_failing_twice_completes_at_its_third_attempt_after_backoff(
    client: httpx.AsyncClient, services: Services
) -> None:
    retry = {"max_attempts": 3, "backoff_seconds": 1, "backoff_factor": 2, "on": ["failed"]}
    response = await client.post(
        "/api/job-runs",
        json={"job_type": "diag.fail", "parameters": FAILING_TWICE, "retry": retry},
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["max_attempts"] == 3
    assert created["retry"] == {
        "max_attempts": 3,
        "backoff_seconds": 1.0,
        "backoff_factor": 2.0,
        "max_backoff_seconds": 3600.0,
        "on": ["failed"],
    }
    run_id = created["id"]

    async with running_worker(services.settings):
        waiting = await _wait_pending_for_retry(services, run_id, attempt=1)
        shown = (await client.get(f"/api/job-runs/{run_id}")).json()
        assert shown["status"] == "pending"
        assert shown["retry_at"] is not None
        assert shown["error"] == "DiagnosticFailure: flapping"
        assert shown["reason"] == "attempt 1 of 3 failed; retrying"
        assert [a["attempt"] for a in shown["attempts"]] == [1]
        assert waiting.retry_at is not None
        run = await wait_for_run(services.sessions, run_id, within=30)

    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 3
    assert run.error is None
    assert run.result == {"attempt": 3}

    detail = (await client.get(f"/api/job-runs/{run_id}")).json()
    assert detail["retry_at"] is None
    attempts = detail["attempts"]
    assert [(a["attempt"], a["status"], a["failure"]) for a in attempts] == [
        (1, "failed", "failed"),
        (2, "failed", "failed"),
        (3, "completed", None),
    ]
    for failed in attempts[:2]:
        assert failed["error"] == "DiagnosticFailure: flapping"
        # Invariant 4: each failed attempt keeps what it found.
        assert failed["result"] == {"partial": True, "message": "flapping"}
    # Backoff: 1 s after attempt 1, 2 s after attempt 2 (never earlier; late by load only).
    for before, after, delay in ((attempts[0], attempts[1], 1.0), (attempts[1], attempts[2], 2.0)):
        gap = (_at(after["started_at"]) - _at(before["finished_at"])).total_seconds()
        assert delay <= gap < delay + 15, (before, after)

    # Watchers saw each failed attempt and when the next one was due.
    events = await services.redis.xrange(services.keyspace.run_events(run_id))
    kinds = [fields[b"type"].decode() for _, fields in events]
    assert kinds.count("retry_scheduled") == 2
    scheduled = [
        json.loads(fields[b"data"]) for _, fields in events if fields[b"type"] == b"retry_scheduled"
    ]
    assert [(e["attempt"], e["failure"], e["delay_seconds"]) for e in scheduled] == [
        (1, "failed", 1.0),
        (2, "failed", 2.0),
    ]
    assert kinds[-1] == "state"

    full = (await client.get(f"/api/job-runs/{run_id}/attempts")).json()
    assert [a["attempt"] for a in full] == [1, 2, 3]

    metrics = (await client.get("/metrics")).text
    assert 'opsjobs_run_attempts_total{job_type="diag.fail"} 3' in metrics
    assert 'opsjobs_run_retries_total{failure="failed",job_type="diag.fail"} 2' in metrics


async def test_a_policy_without_failed_does_not_retry_a_failed_run(
    client: httpx.AsyncClient, services: Services
) -> None:
    retry = {"max_attempts": 3, "on": ["lost", "timeout"]}
    created = (
        await client.post(
            "/api/job-runs",
            json={"job_type": "diag.fail", "parameters": FAILING_TWICE, "retry": retry},
        )
    ).json()
    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, created["id"])
    assert run.status == RunStatus.FAILED
    assert run.attempt == 1
    assert await _attempt_rows(services, created["id"]) == []
    detail = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert [(a["attempt"], a["status"]) for a in detail["attempts"]] == [(1, "failed")]


async def test_the_default_policy_does_not_retry_a_failed_run(
    client: httpx.AsyncClient, services: Services
) -> None:
    created = (
        await client.post(
            "/api/job-runs", json={"job_type": "diag.fail", "parameters": FAILING_TWICE}
        )
    ).json()
    assert created["retry"]["on"] == ["lost"]
    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, created["id"])
    assert run.status == RunStatus.FAILED
    assert run.attempt == 1


async def test_a_timed_out_attempt_is_retried_when_the_policy_names_timeout(
    client: httpx.AsyncClient, services: Services
) -> None:
    retry = {"max_attempts": 2, "on": ["timeout"]}
    created = (
        await client.post(
            "/api/job-runs",
            json={
                "job_type": "diag.progress",
                "parameters": {"steps": 100, "delay": 0.1},
                "timeout_seconds": 1,
                "retry": retry,
            },
        )
    ).json()
    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, created["id"], within=30)
    assert run.status == RunStatus.FAILED
    assert run.attempt == 2
    assert run.error == "timed out after 1 s"
    kept = await _attempt_rows(services, created["id"])
    assert [(row.attempt, row.failure, row.error) for row in kept] == [
        (1, "timeout", "timed out after 1 s")
    ]
    assert kept[0].result is not None
    assert kept[0].result["steps_done"] >= 1


async def test_cancelling_during_backoff_ends_the_run_and_its_deferred_job(
    client: httpx.AsyncClient, services: Services
) -> None:
    retry = {"max_attempts": 3, "backoff_seconds": 60, "on": ["failed"]}
    created = (
        await client.post(
            "/api/job-runs",
            json={"job_type": "diag.fail", "parameters": FAILING_TWICE, "retry": retry},
        )
    ).json()
    run_id = created["id"]
    queue = services.settings.queues.default
    async with running_worker(services.settings):
        waiting = await _wait_pending_for_retry(services, run_id, attempt=1)
        assert waiting.retry_at is not None
        # The attempt's own job is deferred to retry_at (arq waits to finish it first).
        due = waiting.retry_at.timestamp() - 1
        async with asyncio.timeout(10):
            while True:
                score = await services.redis.zscore(
                    services.keyspace.queue(queue), services.keyspace.job_id(run_id)
                )
                if score is not None and score / 1000 >= due:
                    break
                await asyncio.sleep(0.02)

        response = await client.post(f"/api/job-runs/{run_id}/cancel")
        assert response.status_code == 202
        assert response.json()["status"] == "cancelled"
        assert not await transport.is_queued(services.redis, run_id)
        assert (
            await services.redis.zscore(
                services.keyspace.queue(queue), services.keyspace.job_id(run_id)
            )
            is None
        )
        # Even a delivery now (a stray job) starts no attempt.
        await transport.enqueue_dispatch(services.redis, run_id, queue)
        await asyncio.sleep(1.0)

    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.CANCELLED
    assert run.attempt == 1
    assert run.reason == "cancelled before attempt 2"
    assert run.finished_at is not None
    detail = (await client.get(f"/api/job-runs/{run_id}")).json()
    assert detail["retry_at"] is None
    assert [a["attempt"] for a in detail["attempts"]] == [1]


def _progress_request(services: Services, **overrides: Any) -> RunRequest:
    values: dict[str, Any] = {
        "job_type": "diag.progress",
        "job_name": "diag.progress",
        "queue": services.settings.queues.default,
        "parameters": {"steps": 1, "delay": 0},
        "triggered_by": TriggeredBy.API,
    }
    values.update(overrides)
    return RunRequest(**values)


async def _lose(services: Services, run_id: int) -> None:
    """Take the run as a worker that then dies: running, with an expired heartbeat."""
    start = await lifecycle.mark_running(services.sessions, run_id, "dead-worker")
    assert start is not None
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(heartbeat_at=func.now() - timedelta(minutes=5))
        )


async def test_reconciler_waits_for_retry_at_and_then_requeues_a_dropped_retry(
    services: Services,
) -> None:
    policy = RetryPolicy(max_attempts=2, backoff_seconds=600, on=[RetryOn.LOST])
    request = _progress_request(
        services, max_attempts=policy.max_attempts, retry_policy=policy.stored()
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await _lose(services, run_id)
    report = await reap_lost_runs(services)
    assert report.retried == [run_id]
    # Deferred to retry_at (arq's _defer_until): queued, but not due.
    score = await services.redis.zscore(
        services.keyspace.queue(request.queue), services.keyspace.job_id(run_id)
    )
    assert score is not None
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.PENDING
    assert run.retry_at is not None
    assert abs(score / 1000 - run.retry_at.timestamp()) < 1
    assert run.reason == "worker lost during attempt 1; retrying"
    kept = await _attempt_rows(services, run_id)
    assert [(row.attempt, row.failure, row.error) for row in kept] == [(1, "lost", "worker lost")]

    # Redis drops the deferred job; the queued_at is old enough for the reconciler.
    await transport.discard_job(services.redis, run_id, request.queue)
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(queued_at=func.now() - timedelta(minutes=10))
        )
    assert await reconcile_pending_runs(services) == []  # retry_at not reached
    assert not await transport.is_queued(services.redis, run_id)

    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(retry_at=func.now() - timedelta(seconds=1))
        )
    assert await reconcile_pending_runs(services) == [run_id]
    assert await transport.is_queued(services.redis, run_id)


async def test_lost_worker_with_the_default_policy_is_retried_at_once(
    services: Services,
) -> None:
    request = _progress_request(services, max_attempts=2)
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await _lose(services, run_id)
    assert (await reap_lost_runs(services)).retried == [run_id]
    score = await services.redis.zscore(
        services.keyspace.queue(request.queue), services.keyspace.job_id(run_id)
    )
    assert score is not None
    assert score / 1000 <= datetime.now().timestamp() + 1  # due now

    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 2

    # Lost again at its last attempt: failed with "worker lost", as without a policy.
    second = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await _lose(services, second)
    async with services.sessions.begin() as session:
        await session.execute(update(JobRun).where(JobRun.id == second).values(attempt=2))
    report = await reap_lost_runs(services)
    assert report.failed == [second]


async def test_a_policy_without_lost_fails_a_lost_run(services: Services) -> None:
    policy = RetryPolicy(max_attempts=3, on=[RetryOn.FAILED])
    request = _progress_request(
        services, max_attempts=policy.max_attempts, retry_policy=policy.stored()
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await _lose(services, run_id)
    report = await reap_lost_runs(services)
    assert report.failed == [run_id]
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == "worker lost"


async def test_an_attempt_interrupted_by_a_worker_shutdown_is_kept_in_the_list(
    client: httpx.AsyncClient, services: Services, worker_process: asyncio.subprocess.Process
) -> None:
    created = (
        await client.post(
            "/api/job-runs",
            json={"job_type": "diag.progress", "parameters": {"steps": 60, "delay": 0.02}},
        )
    ).json()
    await wait_for_run(services.sessions, created["id"], min_progress=2)
    worker_process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker_process.wait(), timeout=15) == 0

    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, created["id"])
    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 2
    detail = (await client.get(f"/api/job-runs/{created['id']}")).json()
    assert [(a["attempt"], a["status"]) for a in detail["attempts"]] == [
        (1, "interrupted"),
        (2, "completed"),
    ]
    assert detail["attempts"][0]["error"] == "worker shut down; run returned to the queue"
    assert detail["attempts"][0]["started_at"] is not None


async def test_a_killed_worker_run_is_retried_after_its_backoff(
    client: httpx.AsyncClient, services: Services, worker_process: asyncio.subprocess.Process
) -> None:
    retry = {"max_attempts": 2, "backoff_seconds": 1.5, "on": ["lost"]}
    created = (
        await client.post(
            "/api/job-runs",
            json={
                "job_type": "diag.progress",
                "parameters": {"steps": 40, "delay": 0.02},
                "retry": retry,
            },
        )
    ).json()
    run_id = created["id"]
    await wait_for_run(services.sessions, run_id, min_progress=2)
    worker_process.send_signal(signal.SIGKILL)
    await worker_process.wait()
    await asyncio.sleep(services.settings.reaper.lost_after + 0.5)

    assert (await reap_lost_runs(services)).retried == [run_id]
    waiting = (await client.get(f"/api/job-runs/{run_id}")).json()
    assert waiting["status"] == "pending"
    assert waiting["retry_at"] is not None
    assert [(a["attempt"], a["status"], a["failure"]) for a in waiting["attempts"]] == [
        (1, "failed", "lost")
    ]
    async with running_worker(services.settings):
        run = await wait_for_run(services.sessions, run_id, within=30)
    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 2
    assert run.started_at is not None
    assert run.started_at >= _at(waiting["retry_at"])
    metrics = (await client.get("/metrics")).text
    assert 'opsjobs_run_retries_total{failure="lost",job_type="diag.progress"} 1' in metrics


async def test_a_retried_attempt_keeps_a_snapshot_of_its_target_rows(
    client: httpx.AsyncClient, services: Services
) -> None:
    policy = RetryPolicy(max_attempts=2, backoff_seconds=300, on=[RetryOn.FAILED])
    request = _progress_request(
        services, max_attempts=policy.max_attempts, retry_policy=policy.stored()
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    assert await lifecycle.mark_running(services.sessions, run_id, "w1") is not None
    await lifecycle.replace_targets(services.sessions, run_id, [("r1", "router 1"), ("r2", "r2")])
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRunTarget)
            .where(JobRunTarget.run_id == run_id, JobRunTarget.key == "r1")
            .values(status="succeeded", outcome="ok", result={"lines": 12})
        )
    failed = AttemptEnd(failure=RetryOn.FAILED, error="SSH login refused", result={"done": 1})
    scheduled = await schedule_retry(services.sessions, run_id, 1, failed)
    assert scheduled is not None
    assert scheduled.delay == 300

    attempts = (await client.get(f"/api/job-runs/{run_id}/attempts")).json()
    assert len(attempts) == 1
    kept = attempts[0]
    assert (kept["attempt"], kept["status"], kept["failure"]) == (1, "failed", "failed")
    assert kept["result"] == {"done": 1}
    assert [(t["key"], t["status"], t["result"]) for t in kept["targets"]] == [
        ("r1", "succeeded", {"lines": 12}),
        ("r2", "cancelled", None),  # never finished: closed with its attempt
    ]
    # The detail lists attempts without their targets (those are the run's own rows).
    detail = (await client.get(f"/api/job-runs/{run_id}")).json()
    assert detail["attempts"][0]["targets"] is None
    # The next attempt's resolution replaces the run's target rows, not the kept snapshot.
    assert await lifecycle.mark_running(services.sessions, run_id, "w2") is not None
    await lifecycle.replace_targets(services.sessions, run_id, [("r2", "r2")])
    again = (await client.get(f"/api/job-runs/{run_id}/attempts")).json()
    assert [t["key"] for t in again[0]["targets"]] == ["r1", "r2"]
    assert [(a["attempt"], a["status"]) for a in again] == [(1, "failed"), (2, "running")]
    # A late write of the first attempt changes nothing.
    assert await schedule_retry(services.sessions, run_id, 1, failed) is None

"""Lost work is noticed: killed workers, stopped workers, jobs missing from Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunEnd, RunRequest
from service.worker.maintenance import reap_lost_runs, reconcile_pending_runs
from tests.conftest import TEST_DATABASE_URL, TEST_KEY_FILE, TEST_REDIS_URL
from tests.workers import drain, wait_for_run


def progress_request(services: Services, *, max_attempts: int = 1, steps: int = 400) -> RunRequest:
    return RunRequest(
        job_type="diag.progress",
        job_name="diag.progress",
        queue=services.settings.queues.default,
        parameters={"steps": steps, "delay": 0.02},
        triggered_by=TriggeredBy.API,
        max_attempts=max_attempts,
    )


@pytest.fixture
async def worker_process(services: Services) -> AsyncIterator[asyncio.subprocess.Process]:
    """``opsjobs worker`` as a real child process on the test queue."""
    settings = services.settings
    env = {
        **os.environ,
        "OPSJOBS_DATABASE__URL": TEST_DATABASE_URL,
        "OPSJOBS_REDIS__URL": TEST_REDIS_URL,
        "OPSJOBS_REDIS__PREFIX": settings.redis.prefix,
        "OPSJOBS_SECRETS__KEY_FILE": str(TEST_KEY_FILE),
        "OPSJOBS_QUEUES__DEFAULT": settings.queues.default,
        "OPSJOBS_QUEUES__SCHEDULER": settings.queues.scheduler,
        "OPSJOBS_WORKER__HEARTBEAT_INTERVAL": "0.2",
        "OPSJOBS_WORKER__POLL_DELAY": "0.05",
        "OPSJOBS_WORKER__SHUTDOWN_GRACE": "0",
        "OPSJOBS_WORKER__PROGRESS_MIN_INTERVAL": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "--log-level",
        "WARNING",
        "worker",
        "--queue",
        settings.queues.default,
        env=env,
    )
    yield process
    if process.returncode is None:
        process.kill()
    await process.wait()


async def test_killed_worker_run_fails_as_worker_lost(
    services: Services, worker_process: asyncio.subprocess.Process
) -> None:
    run_id = await lifecycle.enqueue_run(
        services.sessions, services.redis, progress_request(services)
    )
    await wait_for_run(services.sessions, run_id, min_progress=2)
    worker_process.send_signal(signal.SIGKILL)
    await worker_process.wait()

    report = await reap_lost_runs(services)
    assert report.failed == []  # the heartbeat is still fresh
    await asyncio.sleep(services.settings.reaper.lost_after + 0.5)
    report = await reap_lost_runs(services)
    assert report.failed == [run_id]

    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == "worker lost"
    assert run.finished_at is not None


async def test_killed_worker_run_is_retried_when_policy_allows(
    services: Services, worker_process: asyncio.subprocess.Process
) -> None:
    request = progress_request(services, max_attempts=2, steps=60)
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await wait_for_run(services.sessions, run_id, min_progress=2)
    worker_process.send_signal(signal.SIGKILL)
    await worker_process.wait()
    await asyncio.sleep(services.settings.reaper.lost_after + 0.5)

    report = await reap_lost_runs(services)
    assert report.retried == [run_id]
    async with services.sessions() as session:
        pending = await session.get_one(JobRun, run_id)
    assert pending.status == RunStatus.PENDING
    assert pending.reason == "worker lost during attempt 1; retrying"
    assert await transport.is_queued(services.redis, run_id)

    await drain(services.settings)
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 2

    # The dead worker's attempt can no longer write anything.
    late = RunEnd(status=RunStatus.FAILED, error="late")
    assert not await lifecycle.finish_run(services.sessions, run_id, 1, late)


async def test_stopped_worker_returns_run_to_queue(
    services: Services, worker_process: asyncio.subprocess.Process
) -> None:
    run_id = await lifecycle.enqueue_run(
        services.sessions, services.redis, progress_request(services, steps=60)
    )
    await wait_for_run(services.sessions, run_id, min_progress=2)
    worker_process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker_process.wait(), timeout=15) == 0

    async with services.sessions() as session:
        stopped = await session.get_one(JobRun, run_id)
    assert stopped.status == RunStatus.PENDING
    assert stopped.reason == "worker shut down; run returned to the queue"

    await drain(services.settings)
    run = await wait_for_run(services.sessions, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.attempt == 2


async def test_reconciler_requeues_pending_run_missing_from_redis(services: Services) -> None:
    request = progress_request(services, steps=1)
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    await transport.discard_job(services.redis, run_id, request.queue)
    assert await reconcile_pending_runs(services) == []  # too young: may be mid-enqueue

    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(queued_at=JobRun.queued_at - timedelta(minutes=5))
        )
    assert await reconcile_pending_runs(services) == [run_id]
    assert await reconcile_pending_runs(services) == []  # queued now: nothing more to do
    await drain(services.settings)
    run = await wait_for_run(services.sessions, run_id)
    assert run.status == RunStatus.COMPLETED

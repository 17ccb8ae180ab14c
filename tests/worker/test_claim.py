"""The worker takes a job in one round trip, with arq's checks: due, queued, not in progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from arq.constants import in_progress_key_prefix
from arq.worker import Worker

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.worker.app import build_worker, on_shutdown, on_startup


def echo(services: Services) -> RunRequest:
    return RunRequest(
        job_type="diag.echo",
        job_name="diag.echo",
        queue=services.settings.queues.default,
        parameters={"message": "claimed"},
        triggered_by=TriggeredBy.API,
    )


@contextlib.asynccontextmanager
async def ready_worker(services: Services) -> AsyncIterator[Worker]:
    """A worker set up as arq's main() would, on the test's Redis pool, not polling."""
    worker = build_worker(
        services.settings,
        services.settings.queues.default,
        burst=True,
        handle_signals=False,
        redis_pool=services.redis,
    )
    worker.ctx["redis"] = services.redis
    await on_startup(worker.ctx)
    try:
        yield worker
    finally:
        await on_shutdown(worker.ctx)


async def start(worker: Worker, job_id: str) -> bool:
    """Offer one job id to the worker; True when it started a task for it."""
    worker.tasks.pop(job_id, None)  # a finished task of an earlier offer
    await worker.start_jobs([job_id.encode()])
    task = worker.tasks.get(job_id)
    if task is None:
        return False
    await asyncio.wait_for(task, 20)
    return True


async def test_claim_starts_a_due_job_once_and_counts_slots(services: Services) -> None:
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, echo(services))
    async with ready_worker(services) as worker:
        job_id = services.keyspace.job_id(run_id)
        assert await start(worker, job_id)
        # The job is done and gone from the queue: offering it again starts nothing.
        assert not await start(worker, job_id)
        assert worker.job_counter == 0
        async with services.sessions() as session:
            run = await session.get_one(JobRun, run_id)
        assert run.status == RunStatus.COMPLETED


async def test_claim_skips_a_job_in_progress_elsewhere(services: Services) -> None:
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, echo(services))
    job_id = services.keyspace.job_id(run_id)
    await services.redis.set(in_progress_key_prefix + job_id, b"1", px=60_000)
    async with ready_worker(services) as worker:
        assert not await start(worker, job_id)
        assert worker.job_counter == 0
        # Still queued for whoever holds it; the run was not touched here.
        assert (
            await services.redis.zscore(
                services.keyspace.queue(services.settings.queues.default), job_id
            )
            is not None
        )
        async with services.sessions() as session:
            run = await session.get_one(JobRun, run_id)
        assert run.status == RunStatus.PENDING


async def test_claim_skips_a_job_deferred_into_the_future(services: Services) -> None:
    run_id = 4242
    job_id = services.keyspace.job_id(run_id)
    await services.redis.enqueue_job(
        transport.DISPATCH_FUNCTION,
        run_id,
        _job_id=job_id,
        _queue_name=services.keyspace.queue(services.settings.queues.default),
        _defer_by=60,
    )
    async with ready_worker(services) as worker:
        assert not await start(worker, job_id)
        assert not await services.redis.exists(in_progress_key_prefix + job_id)
        assert worker.job_counter == 0


async def test_claimed_job_holds_its_in_progress_key_while_it_runs(services: Services) -> None:
    request = RunRequest(
        job_type="diag.progress",
        job_name="diag.progress",
        queue=services.settings.queues.default,
        parameters={"steps": 3, "delay": 0.2},
        triggered_by=TriggeredBy.API,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    job_id = services.keyspace.job_id(run_id)
    async with ready_worker(services) as worker:
        await worker.start_jobs([job_id.encode()])
        key = in_progress_key_prefix + job_id
        assert await services.redis.exists(key)
        ttl_ms = await services.redis.pttl(key)
        assert 0 < ttl_ms <= int(worker.in_progress_timeout_s * 1000)
        await asyncio.wait_for(worker.tasks[job_id], 20)
        assert not await services.redis.exists(key)

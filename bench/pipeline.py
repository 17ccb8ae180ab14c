"""Run throughput of a warm worker: ``enqueue_runs`` → ``completed`` in PostgreSQL, next to
raw arq throughput of no-op jobs on a bare arq worker with the same settings.

Each worker process is started first and measured once it polls its queue (its arq
health-check key exists), so process start-up, which differs in imports, is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from arq.constants import health_check_key_suffix
from sqlalchemy import func, select

from bench.harness import BenchStores, child_env, report
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest

RUNS = 5000
TARGET_RATIO = 0.5
# How often the bench looks for the end (a count over the runs); rarely enough not to load
# the database it measures, often enough to add at most 1 % to a 5,000-run figure.
POLL_S = 0.05


@contextlib.asynccontextmanager
async def polling_worker(stores: BenchStores, queue: str, args: list[str]) -> AsyncIterator[None]:
    """A worker child process for the arq queue (Redis key) ``queue``, yielded once it
    polls; stopped with SIGTERM."""
    await stores.redis.delete(queue + health_check_key_suffix)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, env=child_env(stores.settings)
    )
    try:
        async with asyncio.timeout(60):
            while not await stores.redis.exists(queue + health_check_key_suffix):
                if process.returncode is not None:
                    raise RuntimeError(f"{' '.join(args)} exited with {process.returncode}")
                await asyncio.sleep(POLL_S)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _until(done: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``done`` (a database or Redis count) until it holds."""
    async with asyncio.timeout(600):
        while True:
            if await done():
                return
            await asyncio.sleep(POLL_S)


async def raw_arq_throughput(stores: BenchStores) -> float:
    queue = stores.redis.keyspace.queue("bench-raw")
    async with polling_worker(stores, queue, ["bench.raw_arq_worker", queue]):
        started = time.perf_counter()
        for value in range(RUNS):
            await stores.redis.enqueue_job(
                "noop",
                value,
                _queue_name=queue,
                _job_id=stores.redis.keyspace.key("raw", str(value)),
            )

        async def drained() -> bool:
            return await stores.redis.zcard(queue) == 0

        await _until(drained)
        elapsed = time.perf_counter() - started
    return RUNS / elapsed


async def pipeline_throughput(stores: BenchStores) -> float:
    queue = stores.settings.queues.default
    requests = [
        RunRequest(
            job_type="diag.echo",
            job_name="diag.echo",
            queue=queue,
            parameters={"message": f"bench {i}"},
            triggered_by=TriggeredBy.API,
        )
        for i in range(RUNS)
    ]
    args = ["service.cli", "--log-level", "WARNING", "worker", "--queue", queue]
    async with polling_worker(stores, stores.redis.keyspace.queue(queue), args):
        started = time.perf_counter()
        await lifecycle.enqueue_runs(stores.sessions, stores.redis, requests)

        async def all_completed() -> bool:
            async with stores.sessions() as session:
                completed = await session.scalar(
                    select(func.count()).where(JobRun.status == RunStatus.COMPLETED.value)
                )
            return completed == RUNS

        await _until(all_completed)
        elapsed = time.perf_counter() - started
    return RUNS / elapsed


async def run(stores: BenchStores) -> bool:
    raw = await raw_arq_throughput(stores)
    ours = await pipeline_throughput(stores)
    ratio = ours / raw
    worker = stores.settings.worker
    report(
        f"run pipeline: {RUNS} diag.echo runs vs {RUNS} raw arq no-op jobs, one warm worker "
        f"process each (max_jobs={worker.max_jobs}, poll_delay={worker.poll_delay}s)",
        [
            ("raw arq no-op", f"{raw:8.1f} jobs/s"),
            ("opsjobs end to end", f"{ours:8.1f} runs/s"),
            ("ratio", f"{ratio:8.2f}  (target >= {TARGET_RATIO})"),
        ],
    )
    return ratio >= TARGET_RATIO

"""Run throughput across a Redis restart: the run pipeline with Redis killed and started
again (empty: no persistence) when half the runs are done, next to the same runs without.

A private ``redis-server`` on a free port carries both measurements; a default-queue and
a scheduler-queue worker process (whose reconciler queues again what Redis lost) run on it
and the bench database. Runs lost with Redis are queued again by the scheduler queue's
worker as soon as Redis is back, so the figure is the price of the outage itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

from arq.connections import ArqRedis
from sqlalchemy import func, select

from bench.harness import BenchStores, bench_stores, child_env, report
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.keyspace import keyspace_of, open_redis
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from tests.faults.redis_instance import RedisInstance

RUNS = 2000
# Seconds Redis stays down in the middle of the runs.
DOWN_S = 1.0
TARGET_RATIO = 0.5
POLL_S = 0.05


@contextlib.asynccontextmanager
async def workers_on(stores: BenchStores, redis: ArqRedis, url: str) -> AsyncIterator[None]:
    """A default-queue and a scheduler-queue worker process on ``url``, once both poll."""
    env = {**child_env(stores.settings), "OPSJOBS_REDIS__URL": url}
    queues = stores.settings.queues
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "--log-level",
            "ERROR",
            "worker",
            "--queue",
            queue,
            env=env,
        )
        for queue in (queues.default, queues.scheduler)
    ]
    try:
        async with asyncio.timeout(120):
            while (
                len(
                    [
                        key
                        async for key in redis.scan_iter(match=keyspace_of(redis).workers_pattern())
                    ]
                )
                < 2
            ):
                for process in processes:
                    if process.returncode is not None:
                        raise RuntimeError(f"a worker exited with {process.returncode}")
                await asyncio.sleep(POLL_S)
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()


async def throughput(
    stores: BenchStores, redis: ArqRedis, instance: RedisInstance, *, restart: bool
) -> float:
    requests = [
        RunRequest(
            job_type="diag.echo",
            job_name="diag.echo",
            queue=stores.settings.queues.default,
            parameters={"message": f"restart bench {i}"},
            triggered_by=TriggeredBy.API,
        )
        for i in range(RUNS)
    ]
    started = time.perf_counter()
    run_ids = await lifecycle.enqueue_runs(stores.sessions, redis, requests)
    first, last = min(run_ids), max(run_ids)
    restarted = not restart

    async with asyncio.timeout(600):
        while True:
            async with stores.sessions() as session:
                completed = await session.scalar(
                    select(func.count()).where(
                        JobRun.id.between(first, last),
                        JobRun.status == RunStatus.COMPLETED.value,
                    )
                )
            if completed == RUNS:
                break
            if not restarted and (completed or 0) >= RUNS // 2:
                await asyncio.to_thread(instance.restart, DOWN_S, kill=True)
                restarted = True
            await asyncio.sleep(POLL_S)
    return RUNS / (time.perf_counter() - started)


async def run(stores: BenchStores) -> bool:
    instance = RedisInstance()
    await asyncio.to_thread(instance.start)
    redis = await open_redis(instance.url(), retry=5)
    try:
        async with workers_on(stores, redis, instance.url()):
            steady = await throughput(stores, redis, instance, restart=False)
            across = await throughput(stores, redis, instance, restart=True)
    finally:
        await redis.aclose()
        await asyncio.to_thread(instance.close)
    ratio = across / steady
    report(
        f"run pipeline across a Redis restart: {RUNS} diag.echo runs, one default-queue and "
        f"one scheduler-queue worker process; Redis killed when half are done, back empty "
        f"{DOWN_S:g} s later",
        [
            ("without restart", f"{steady:8.1f} runs/s"),
            ("with restart", f"{across:8.1f} runs/s"),
            ("ratio", f"{ratio:8.2f}  (target >= {TARGET_RATIO})"),
        ],
    )
    return ratio >= TARGET_RATIO


async def main() -> int:
    async with bench_stores() as stores:
        return 0 if await run(stores) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""End-to-end run throughput (enqueue_run → completed in PostgreSQL) against raw arq no-ops."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bench.harness import BenchStores, child_env, report, run_child
from service import runs
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.runs import RunRequest

RUNS = 5000
TARGET_RATIO = 0.5


async def raw_arq_throughput(stores: BenchStores) -> float:
    queue = "bench-raw"
    started = time.perf_counter()
    for value in range(RUNS):
        await stores.redis.enqueue_job("noop", value, _queue_name=queue)
    await run_child(["bench.raw_arq_worker", queue], child_env(stores.settings))
    elapsed = time.perf_counter() - started
    left = await stores.redis.zcard(queue)
    if left:
        raise RuntimeError(f"raw arq left {left} jobs queued")
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
    started = time.perf_counter()
    await runs.enqueue_runs(stores.sessions, stores.redis, requests)
    await run_child(
        ["service.cli", "--log-level", "WARNING", "worker", "--queue", queue, "--burst"],
        child_env(stores.settings),
    )
    elapsed = time.perf_counter() - started
    async with stores.sessions() as session:
        completed = await session.scalar(
            select(func.count()).where(JobRun.status == RunStatus.COMPLETED.value)
        )
    if completed != RUNS:
        raise RuntimeError(f"only {completed} of {RUNS} runs completed")
    return RUNS / elapsed


async def run(stores: BenchStores) -> bool:
    raw = await raw_arq_throughput(stores)
    ours = await pipeline_throughput(stores)
    ratio = ours / raw
    worker = stores.settings.worker
    report(
        f"run pipeline: {RUNS} diag.echo runs vs {RUNS} raw arq no-op jobs, one worker process "
        f"(max_jobs={worker.max_jobs}, poll_delay={worker.poll_delay}s)",
        [
            ("raw arq no-op", f"{raw:8.1f} jobs/s"),
            ("opsjobs end to end", f"{ours:8.1f} runs/s"),
            ("ratio", f"{ratio:8.2f}  (target >= {TARGET_RATIO})"),
        ],
    )
    return ratio >= TARGET_RATIO

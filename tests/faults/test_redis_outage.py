"""Redis restarts and outages: workers live through them, runs neither fail nor get lost."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from executors.services import Services
from service.db.models import TERMINAL_STATUSES, JobRun, RunStatus, TriggeredBy
from service.keyspace import KeySpace, open_redis
from service.queue.leases import Leases, Slot
from service.runs import lifecycle
from service.runs.events import last_final_event
from service.runs.lifecycle import RunRequest
from service.worker.maintenance import RECONCILE_MIN_AGE_S
from tests.faults.conditions import until
from tests.faults.conftest import WorkerProcess, add_worker
from tests.faults.redis_instance import RedisInstance

OUTAGE_STARTED = "Redis unreachable"
OUTAGE_ENDED = "Redis reachable again"


def progress(services: Services, *, steps: int, delay: float) -> RunRequest:
    return RunRequest(
        job_type="diag.progress",
        job_name="diag.progress",
        queue=services.settings.queues.default,
        parameters={"steps": steps, "delay": delay},
        triggered_by=TriggeredBy.API,
    )


async def statuses(services: Services, run_ids: list[int]) -> dict[int, str]:
    async with services.sessions() as session:
        rows = await session.execute(select(JobRun.id, JobRun.status).where(JobRun.id.in_(run_ids)))
        return {row.id: row.status for row in rows}


async def polling(services: Services, worker: WorkerProcess) -> bool:
    """The worker has written its heartbeat key (it is past start-up)."""
    assert worker.alive, f"worker {worker.name} exited:\n{worker.log()[-3000:]}"
    assert worker.process is not None
    # Worker ids are host:pid:queue:random.
    pattern = KeySpace().worker(f"*:{worker.process.pid}:*")
    keys = [key async for key in services.redis.scan_iter(match=pattern)]
    return bool(keys)


def lines(log: str, level: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if f" {level} " in line and text in line]


async def test_a_worker_outlives_a_redis_outage(
    fault_services: Services,
    private_redis: RedisInstance,
    workers: dict[str, WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    services = fault_services
    worker = await add_worker(
        workers, "default", services.settings.queues.default, worker_env, tmp_path
    )
    await until(lambda: polling(services, worker), within=60)
    before = len(worker.log())

    await asyncio.to_thread(private_redis.stop, kill=True)
    await until(lambda: OUTAGE_STARTED in worker.log(), within=30)
    # Down for a while more: the worker backs off and retries meanwhile.
    await asyncio.sleep(4)
    await asyncio.to_thread(private_redis.start)
    await until(lambda: OUTAGE_ENDED in worker.log(), within=30)

    # It takes jobs again.
    run_id = await lifecycle.enqueue_run(
        services.sessions, services.redis, progress(services, steps=2, delay=0.05)
    )
    await until(
        lambda: _ended(services, [run_id]),
        within=60,
    )
    assert (await statuses(services, [run_id]))[run_id] == RunStatus.COMPLETED

    log = worker.log()[before:]
    assert worker.alive, f"the worker exited with {worker.process and worker.process.returncode}"
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    started = lines(log, "WARNING", OUTAGE_STARTED)
    ended = lines(log, "INFO", OUTAGE_ENDED)
    tracebacks = log.count("Traceback")
    assert len(started) == 1, f"{len(started)} outage WARNINGs, 1 expected:\n{log[-3000:]}"
    assert len(warnings) == 1, f"{len(warnings)} WARNING lines, 1 expected:\n{warnings}"
    assert len(ended) == 1, f"{len(ended)} outage-ended INFOs, 1 expected:\n{log[-3000:]}"
    assert tracebacks == 0, f"{tracebacks} tracebacks in the worker log, 0 expected:\n{log}"


async def _ended(services: Services, run_ids: list[int]) -> bool:
    terminal = {status.value for status in TERMINAL_STATUSES}
    found = await statuses(services, run_ids)
    return all(found.get(run_id) in terminal for run_id in run_ids)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("down_for", [3, 30], ids=["3s", "30s"])
async def test_a_redis_restart_fails_and_loses_no_running_run(
    fault_services: Services,
    private_redis: RedisInstance,
    workers: dict[str, WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
    down_for: float,
) -> None:
    """5 runs are running when Redis restarts (its data lost) and stays down ``down_for``
    seconds: every run completes, and its final state event is in its stream."""
    services = fault_services
    queues = services.settings.queues
    worker = await add_worker(workers, "default", queues.default, worker_env, tmp_path)
    await add_worker(workers, "scheduler", queues.scheduler, worker_env, tmp_path)
    await until(lambda: polling(services, worker), within=60)
    # Each run reports progress every 0.2 s: the outage falls in the middle of them.
    run_ids = [
        await lifecycle.enqueue_run(
            services.sessions,
            services.redis,
            progress(services, steps=int((down_for + 8) / 0.2), delay=0.2),
        )
        for _ in range(5)
    ]

    async def all_running() -> bool:
        found = await statuses(services, run_ids)
        return all(status == RunStatus.RUNNING for status in found.values())

    await until(all_running, within=60)
    await asyncio.to_thread(private_redis.restart, down_for, kill=True)
    await until(lambda: _ended(services, run_ids), within=down_for + 120)

    found = await statuses(services, run_ids)
    failed = sorted(run_id for run_id, status in found.items() if status != RunStatus.COMPLETED)
    lost = sorted(set(run_ids) - set(found))
    assert failed == [], f"{len(failed)} runs did not complete: {failed}, 0 expected"
    assert lost == [], f"{len(lost)} runs lost, 0 expected"

    async def finals_visible() -> bool:
        events = [await last_final_event(services.redis, run_id) for run_id in run_ids]
        return all(event is not None for event in events)

    await until(finals_visible, within=30)
    finals = [await last_final_event(services.redis, run_id) for run_id in run_ids]
    missing = [run_id for run_id, event in zip(run_ids, finals, strict=True) if event is None]
    assert missing == [], f"{len(missing)} final events missing, 0 expected"
    log = worker.log()
    assert worker.alive, f"the worker exited:\n{log[-3000:]}"
    tracebacks = len(re.findall("Traceback", log))
    assert tracebacks == 0, f"{tracebacks} tracebacks in the worker log, 0 expected:\n{log}"


async def test_runs_queued_when_redis_loses_its_data_are_queued_again_when_it_is_back(
    fault_services: Services,
    private_redis: RedisInstance,
    workers: dict[str, WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """20 pending runs whose jobs a Redis restart wiped: the scheduler queue's worker queues
    them again as soon as Redis is back, not after the reconciler's 30 s age guard."""
    services = fault_services
    queues = services.settings.queues
    scheduler = await add_worker(workers, "scheduler", queues.scheduler, worker_env, tmp_path)
    await until(lambda: polling(services, scheduler), within=60)
    run_ids = await lifecycle.enqueue_runs(
        services.sessions,
        services.redis,
        [progress(services, steps=1, delay=0) for _ in range(20)],
    )
    # The restart wipes the queue (no persistence).
    await asyncio.to_thread(private_redis.restart, 2, kill=True)
    await until(lambda: OUTAGE_ENDED in scheduler.log(), within=30)
    await add_worker(workers, "default", queues.default, worker_env, tmp_path)
    # Well inside the age guard, counted from Redis being back (worker start-up included).
    waited = await until(lambda: _ended(services, run_ids), within=RECONCILE_MIN_AGE_S - 10)
    found = await statuses(services, run_ids)
    lost = sorted(run_id for run_id, status in found.items() if status != RunStatus.COMPLETED)
    assert lost == [], f"{len(lost)} runs not completed after {waited:.1f} s, 0 expected"


async def test_a_held_concurrency_slot_outlives_a_redis_restart(
    private_redis: RedisInstance,
) -> None:
    """A run holding a slot (a device, a template's cap) while Redis restarts keeps working;
    a waiter for a slot waits the outage out instead of failing."""
    redis = await open_redis(private_redis.url())
    leases = Leases(redis, ttl=0.6, poll=0.05)
    slot = Slot("device:1", 1)
    try:
        async with leases.hold([slot]):
            # Renewals fail while Redis is down (every 0.2 s); the block goes on.
            await asyncio.to_thread(private_redis.restart, 1.0, kill=True)
        await asyncio.to_thread(private_redis.stop, kill=True)
        waiter = asyncio.create_task(_hold_briefly(leases, slot))
        await asyncio.sleep(0.5)
        assert not waiter.done(), "a waiter gave up while Redis was away"
        await asyncio.to_thread(private_redis.start)
        await asyncio.wait_for(waiter, 20)
    finally:
        await redis.aclose()


async def _hold_briefly(leases: Leases, slot: Slot) -> None:
    async with leases.hold([slot]):
        pass


async def test_a_worker_stopped_during_a_redis_outage_exits_cleanly(
    fault_services: Services,
    private_redis: RedisInstance,
    workers: dict[str, WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """SIGTERM while Redis is away and a run is running: the run goes back to pending (its
    record is in PostgreSQL), the worker exits 0 without a traceback."""
    services = fault_services
    worker = await add_worker(
        workers, "default", services.settings.queues.default, worker_env, tmp_path
    )
    await until(lambda: polling(services, worker), within=60)
    run_id = await lifecycle.enqueue_run(
        services.sessions, services.redis, progress(services, steps=200, delay=0.1)
    )

    async def running() -> bool:
        return (await statuses(services, [run_id]))[run_id] == RunStatus.RUNNING

    await until(running, within=30)
    await asyncio.to_thread(private_redis.stop, kill=True)
    await until(lambda: OUTAGE_STARTED in worker.log(), within=30)
    code = await worker.stop(grace=60)
    log = worker.log()
    assert code == 0, f"the worker exited with {code}, 0 expected:\n{log[-3000:]}"
    tracebacks = log.count("Traceback")
    assert tracebacks == 0, f"{tracebacks} tracebacks in the worker log, 0 expected:\n{log}"
    assert (await statuses(services, [run_id]))[run_id] == RunStatus.PENDING

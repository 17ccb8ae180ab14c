"""Nothing jams the queues: jobs of dead workers and of ended runs are removed, not skipped."""

from __future__ import annotations

import time
from datetime import timedelta

from arq.constants import in_progress_key_prefix, job_key_prefix
from sqlalchemy import func, select, update

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.settings import WorkerSettings
from service.worker.maintenance import reap_lost_runs, reconcile_pending_runs
from tests.conftest import make_settings
from tests.faults.conditions import until
from tests.worker.test_claim import echo, ready_worker, start
from tests.workers import running_worker, wait_for_run

DEAD_WORKER = "host:1:t-default:dead00"


async def test_a_job_in_progress_under_a_worker_without_heartbeat_is_taken_over(
    services: Services,
) -> None:
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, echo(services))
    job_id = services.keyspace.job_id(run_id)
    key = in_progress_key_prefix + job_id
    await services.redis.set(key, DEAD_WORKER, px=3_600_000)
    # While that worker beats, its job is its own.
    await services.redis.set(services.keyspace.worker(DEAD_WORKER), "{}", px=60_000)
    async with ready_worker(services) as worker:
        assert not await start(worker, job_id)
        await services.redis.delete(services.keyspace.worker(DEAD_WORKER))
        assert await start(worker, job_id)
        assert worker.jobs_taken_over == 1
    async with services.sessions() as session:
        assert (await session.get_one(JobRun, run_id)).status == RunStatus.COMPLETED
    assert not await services.redis.exists(key, job_key_prefix + job_id)


async def test_jobs_of_ended_runs_held_by_dead_workers_never_hide_the_runs_behind_them(
    services: Services,
) -> None:
    """120 ended runs whose jobs a killed worker left "in progress" sit before 30 pending
    runs; arq reads 5 × max_jobs = 100 job ids per poll. Every pending run still runs."""
    settings = make_settings(worker=WorkerSettings(max_jobs=20, poll_delay=0.05))
    queue = settings.queues.default
    requests = [echo(services) for _ in range(150)]
    run_ids = await lifecycle.enqueue_runs(services.sessions, services.redis, requests)
    ended, waiting = run_ids[:120], run_ids[120:]
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id.in_(ended))
            .values(status=RunStatus.FAILED.value, error="worker lost", finished_at=func.now())
        )
    for run_id in ended:
        await services.redis.set(
            in_progress_key_prefix + services.keyspace.job_id(run_id), DEAD_WORKER, px=3_600_000
        )
    async with running_worker(settings):
        for run_id in waiting:
            run = await wait_for_run(services.sessions, run_id, within=60)
            assert run.status == RunStatus.COMPLETED, f"run {run_id} ended {run.status}"
        await until(lambda: _empty(services, queue), within=30)
    left = await services.redis.zcard(services.keyspace.queue(queue))
    assert left == 0, f"{left} jobs left in the queue, 0 expected"


async def _empty(services: Services, queue: str) -> bool:
    return await services.redis.zcard(services.keyspace.queue(queue)) == 0


async def test_the_reaper_removes_the_job_and_in_progress_key_of_a_run_it_ends(
    services: Services,
) -> None:
    request = RunRequest(
        job_type="diag.echo",
        job_name="diag.echo",
        queue=services.settings.queues.default,
        parameters={"message": "lost"},
        triggered_by=TriggeredBy.API,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    job_id = services.keyspace.job_id(run_id)
    assert await lifecycle.mark_running(services.sessions, run_id, DEAD_WORKER) is not None
    await services.redis.set(in_progress_key_prefix + job_id, DEAD_WORKER, px=3_600_000)
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(heartbeat_at=func.now() - timedelta(minutes=5))
        )
    report = await reap_lost_runs(services)
    assert report.failed == [run_id]
    assert await services.redis.zscore(services.keyspace.queue(request.queue), job_id) is None
    assert not await services.redis.exists(in_progress_key_prefix + job_id)
    assert not await services.redis.exists(job_key_prefix + job_id)


async def test_the_reconciler_removes_queued_jobs_of_ended_and_deleted_runs(
    services: Services,
) -> None:
    queue = services.settings.queues.default
    ended, deleted, pending = await lifecycle.enqueue_runs(
        services.sessions, services.redis, [echo(services) for _ in range(3)]
    )
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == ended)
            .values(status=RunStatus.CANCELLED.value, finished_at=func.now())
        )
        await session.execute(
            update(JobRun).where(JobRun.id == deleted).values(status=RunStatus.SKIPPED.value)
        )
    async with services.sessions.begin() as session:
        await session.execute(JobRun.__table__.delete().where(JobRun.id == deleted))
    await reconcile_pending_runs(services)
    queued = [
        services.keyspace.run_id_of(job)
        for job in await services.redis.zrange(services.keyspace.queue(queue), 0, -1)
    ]
    assert queued == [pending]
    async with services.sessions() as session:
        statuses = {
            row.id: row.status for row in await session.execute(select(JobRun.id, JobRun.status))
        }
    assert statuses == {ended: RunStatus.CANCELLED.value, pending: RunStatus.PENDING.value}


async def test_a_cron_job_in_progress_is_never_taken_over(services: Services) -> None:
    """arq keeps a finished cron fire's in-progress key for a minute so the fire runs once;
    only run jobs are taken over from workers without a heartbeat."""
    queue = services.settings.queues.default
    job_id = services.keyspace.cron("reap_lost_runs") + ":1700000000000"
    await services.redis.zadd(services.keyspace.queue(queue), {job_id: 1})
    await services.redis.set(in_progress_key_prefix + job_id, DEAD_WORKER, px=60_000)
    async with ready_worker(services) as worker:
        assert not await start(worker, job_id)
        assert worker.jobs_taken_over == 0


async def test_a_job_left_in_progress_under_the_asking_worker_is_taken_again(
    services: Services,
) -> None:
    """A Redis outage between taking a job and settling it leaves the job in progress under
    the worker itself, which no longer runs it: it takes the job again."""
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, echo(services))
    job_id = services.keyspace.job_id(run_id)
    async with ready_worker(services) as worker:
        await services.redis.set(in_progress_key_prefix + job_id, worker.worker_id, px=60_000)
        assert await start(worker, job_id)
    async with services.sessions() as session:
        assert (await session.get_one(JobRun, run_id)).status == RunStatus.COMPLETED


async def test_a_wake_up_during_a_deferral_leaves_the_job_due(services: Services) -> None:
    """The run waited for ends while a worker is deferring the waiting run's job: the
    wake-up reaches it either way, so it is not put 5 s into the future."""
    queue = services.settings.queues.default
    first, second = await lifecycle.enqueue_runs(
        services.sessions, services.redis, [echo(services) for _ in range(2)]
    )
    # Woken first, deferred after: due now.
    await transport.wake_jobs(services.redis, [(first, queue)])
    assert not await transport.defer_job(
        services.redis, services.keyspace.queue(queue), services.keyspace.job_id(first), 5000
    )
    # Deferred first, woken after: due now.
    assert await transport.defer_job(
        services.redis, services.keyspace.queue(queue), services.keyspace.job_id(second), 5000
    )
    await transport.wake_jobs(services.redis, [(second, queue)])
    now_ms = int(time.time() * 1000)
    for run_id in (first, second):
        score = await services.redis.zscore(
            services.keyspace.queue(queue), services.keyspace.job_id(run_id)
        )
        assert score is not None
        assert score <= now_ms + 100, f"run {run_id} due in {(score - now_ms) / 1000:.1f} s"

"""PostgreSQL stopped for 10 s under a worker running runs and its crons: nothing is lost,
nothing fails because of it, and the worker says so once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select, update

from executors import get_executor
from executors.services import Services
from service.db import engine as engine_module
from service.db.engine import DatabaseUnavailable, create_engine, create_session_factory
from service.db.migrate import ensure_database, migrate
from service.db.models import TERMINAL_STATUSES, JobRun, RunStatus, TriggeredBy
from service.errors import OpsjobsError
from service.keyspace import open_redis, refuse_foreign_keys
from service.runs import lifecycle
from service.runs.reporting import EventPublisher, RunReporter
from service.runs.requests import adhoc_request
from service.settings import DatabaseSettings, QueueSettings, WorkerSettings
from service.worker.context import WorkerContext
from service.worker.crons import lost_runs_cron
from service.worker.outages import database_outage
from tests.conftest import TEST_REDIS_PREFIX, TEST_REDIS_URL, free_port, make_settings
from tests.faults.postgres_instance import PostgresInstance, postgres_instance
from tests.workers import running_worker

OUTAGE_S = 10.0
RUNS = 30


@pytest.fixture
async def private_pg() -> AsyncIterator[PostgresInstance]:
    async with postgres_instance() as instance:
        yield instance


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    pool = await open_redis(TEST_REDIS_URL, TEST_REDIS_PREFIX)
    await refuse_foreign_keys(pool, pool.keyspace, TEST_REDIS_URL)
    await pool.flushdb()
    yield pool
    await pool.aclose()


async def test_a_postgres_outage_loses_and_fails_no_run(
    private_pg: PostgresInstance, redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    url = private_pg.url("opsjobs_faults")
    # Default heartbeat, reaper and progress settings, as an operator runs them; one queue
    # whose worker also runs the crons (scheduler, reaper, reconciler, notify, retention).
    settings = make_settings(
        database=DatabaseSettings(url=url, pool_size=5, max_overflow=20),
        queues=QueueSettings(default="f-runs", devices="f-devices", scheduler="f-runs"),
        worker=WorkerSettings(poll_delay=0.05, shutdown_grace=0),
        reaper={},
    )
    await ensure_database(url)
    engine = create_engine(settings.database)
    await migrate(engine)
    sessions = create_session_factory(engine)
    run_ids = [
        await lifecycle.enqueue_run(
            sessions,
            redis,
            adhoc_request(
                settings,
                get_executor,
                job_type="diag.progress",
                parameters={"steps": 12, "delay": 0.5},
                triggered_by=TriggeredBy.API,
                executed_by="admin",
            ),
        )
        for _ in range(RUNS)
    ]
    await engine.dispose()

    caplog.set_level(logging.INFO)
    async with running_worker(settings, "f-runs"):
        await asyncio.sleep(2.5)  # runs under way, crons ticking
        await asyncio.to_thread(private_pg.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(private_pg.start)
        # Every run ends: 12 × 0.5 s each, 20 at a time, plus the outage and back-off.
        engine = create_engine(settings.database)
        sessions = create_session_factory(engine)
        deadline = time.monotonic() + 120
        terminal = {status.value for status in TERMINAL_STATUSES}
        while True:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(JobRun.id, JobRun.status, JobRun.error).where(JobRun.id.in_(run_ids))
                    )
                ).all()
            if all(row.status in terminal for row in rows) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await engine.dispose()
        worker_tasks = [
            task for task in asyncio.all_tasks() if "Worker.main" in repr(task.get_coro())
        ]
        alive = bool(worker_tasks) and not any(task.done() for task in worker_tasks)

    lost = [row.id for row in rows if row.status not in terminal]
    failed = [(row.id, row.error) for row in rows if row.status != RunStatus.COMPLETED.value]
    assert len(rows) == RUNS, f"runs lost from the record: {RUNS - len(rows)}"
    assert not lost, f"runs lost (never ended): {len(lost)}"
    assert not failed, f"runs failed because of the outage: {len(failed)} {failed[:3]}"
    assert alive, "the worker died during the outage"
    outage_records = [r for r in caplog.records if r.name == "service.worker.outages"]
    warnings = [r for r in outage_records if r.levelno == logging.WARNING]
    infos = [r for r in outage_records if r.levelno == logging.INFO]
    assert len(warnings) == 1, f"outage WARNINGs: {[r.getMessage() for r in warnings]}"
    assert len(infos) == 1, f"outage INFOs: {[r.getMessage() for r in infos]}"
    assert "PostgreSQL unavailable" in warnings[0].getMessage()
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, (
        f"log records with a traceback or an error: {len(tracebacks)}: "
        f"{[(r.name, r.getMessage()) for r in tracebacks[:5]]}"
    )


async def test_a_progress_write_gives_up_naming_the_database(
    monkeypatch: pytest.MonkeyPatch, redis: ArqRedis
) -> None:
    """Past the bounded retries a progress write raises an error naming the database,
    which the worker records as the run's error (an ``OpsjobsError``, no traceback)."""
    monkeypatch.setattr(engine_module, "RETRY_DELAYS_S", (0.05, 0.05, 0.05))
    nowhere = DatabaseSettings(url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    engine = create_engine(nowhere)
    reporter = RunReporter(
        sessions=create_session_factory(engine),
        events=EventPublisher(redis, make_settings().events),
        run_id=7,
        attempt=1,
        min_db_interval=0,
    )
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            await reporter.progress(1, 2, "half way")
        with pytest.raises(DatabaseUnavailable) as raised_target:
            await reporter.target_started("node-1")
    finally:
        await engine.dispose()
    assert time.monotonic() - started < 10
    assert "database unavailable during progress write of run 7" in str(raised.value)
    assert "database unavailable during target write of run 7" in str(raised_target.value)
    assert isinstance(raised.value, OpsjobsError)


async def test_the_reaper_waits_lost_after_once_postgres_is_back(services: Services) -> None:
    """Runs whose heartbeats could not be written during an outage are not reaped as lost
    until live workers had ``reaper.lost_after`` to beat again."""
    sessions = services.sessions
    run_id = await lifecycle.enqueue_run(
        sessions,
        services.redis,
        adhoc_request(
            services.settings,
            get_executor,
            job_type="diag.echo",
            parameters={},
            triggered_by=TriggeredBy.API,
            executed_by="admin",
        ),
    )
    assert await lifecycle.mark_running(sessions, run_id, "a-live-worker") is not None
    async with sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(heartbeat_at=func.now() - timedelta(minutes=5))
        )
    outage = database_outage()
    outage.failed(ConnectionRefusedError())
    outage.recovered()
    ctx: WorkerContext = {"services": services, "database_outage": outage}

    assert await lost_runs_cron(ctx) == 0
    async with sessions() as session:
        assert (await session.get_one(JobRun, run_id)).status == RunStatus.RUNNING.value
    assert outage.ended_at is not None
    outage.ended_at -= services.settings.reaper.lost_after + 1
    assert await lost_runs_cron(ctx) == 1
    async with sessions() as session:
        assert (await session.get_one(JobRun, run_id)).status == RunStatus.FAILED.value

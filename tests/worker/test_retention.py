"""Retention: old finished runs and their targets go in batches; pending and running stay."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from executors.services import Services
from service.db.models import JobRun, JobRunTarget, RunStatus, TriggeredBy
from service.runs.lifecycle import RunRequest, insert_runs
from service.settings import RetentionSettings
from service.worker.retention import purge_finished_runs, retention_minutes
from tests.conftest import make_settings

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def _run(services: Services, status: RunStatus, finished_days_ago: float | None) -> int:
    request = RunRequest(
        job_type="diag.echo",
        job_name="old",
        queue="q",
        parameters={},
        triggered_by=TriggeredBy.API,
    )
    long_ago = NOW - timedelta(days=90)
    finished = None if finished_days_ago is None else NOW - timedelta(days=finished_days_ago)
    async with services.sessions.begin() as session:
        (run_id,) = await insert_runs(session, [request])
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status.value, finished_at=finished, queued_at=long_ago)
        )
        session.add(JobRunTarget(run_id=run_id, position=0, key="k", name="n"))
    return run_id


async def test_old_finished_runs_go_in_batches(services: Services) -> None:
    old = [
        await _run(services, status, 31 + i)
        for i, status in enumerate(
            [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED] * 2
        )
    ]
    kept = [
        await _run(services, RunStatus.COMPLETED, 29),
        await _run(services, RunStatus.PENDING, None),
        await _run(services, RunStatus.RUNNING, None),
    ]
    small_batches = dataclasses.replace(
        services, settings=make_settings(retention=RetentionSettings(days=30, batch=3))
    )

    assert await purge_finished_runs(small_batches, NOW) == len(old)

    async with services.sessions() as session:
        left = set(await session.scalars(select(JobRun.id)))
        targets = set(await session.scalars(select(JobRunTarget.run_id)))
    assert left == set(kept)
    assert targets == set(kept)
    assert await purge_finished_runs(small_batches, NOW) == 0


async def test_nothing_to_purge(services: Services) -> None:
    await _run(services, RunStatus.COMPLETED, 1)
    assert await purge_finished_runs(services, NOW) == 0
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(JobRun)) == 1


def test_retention_runs_at_whole_minutes() -> None:
    assert retention_minutes(3600) == {0}
    assert retention_minutes(86400) == {0}
    assert retention_minutes(600) == set(range(0, 60, 10))
    assert retention_minutes(7 * 60) == set(range(0, 60, 6))
    assert retention_minutes(1) == set(range(60))

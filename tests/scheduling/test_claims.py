"""Claiming due schedules against real PostgreSQL and Redis: exactly once, misfire and overlap."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from executors.services import Services
from service.db.models import JobRun, JobSchedule, RunStatus, TriggeredBy
from service.queue import transport
from service.runs.lifecycle import (
    RunEnd,
    RunMustWait,
    RunRequest,
    finish_run,
    insert_runs,
    mark_running,
)
from service.scheduling.claims import MISSED, claim_due_schedules, last_tick, tick
from service.settings import SchedulerSettings
from tests.conftest import make_settings
from tests.scheduling.factories import (
    make_schedule,
    make_schedules,
    make_template,
    schedule_row,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def _runs(services: Services, schedule_id: int) -> list[JobRun]:
    async with services.sessions() as session:
        rows = await session.scalars(
            select(JobRun).where(JobRun.schedule_id == schedule_id).order_by(JobRun.scheduled_for)
        )
        return list(rows)


async def _schedule(services: Services, schedule_id: int) -> JobSchedule:
    async with services.sessions() as session:
        return await session.get_one(JobSchedule, schedule_id)


async def test_three_concurrent_claimers_make_exactly_one_run_per_fire(
    services: Services,
) -> None:
    template_id = await make_template(services.sessions)
    count = 1000
    first = NOW - timedelta(minutes=2, seconds=10)
    await make_schedules(
        services.sessions,
        [
            schedule_row(
                template_id,
                f"every-minute-{i}",
                first,
                interval_minutes=1,
                misfire_policy="run_all",
                overlap_policy="allow",
            )
            for i in range(count)
        ],
    )
    small_batches = dataclasses.replace(
        services, settings=make_settings(scheduler=SchedulerSettings(batch=40))
    )

    async def claim_until_done() -> int:
        claimed = 0
        while (report := await claim_due_schedules(small_batches, NOW, 40)).claimed:
            claimed += report.claimed
        return claimed

    claims = await asyncio.gather(*(claim_until_done() for _ in range(3)))

    assert sum(claims) == count  # each schedule claimed once in all
    expected = {first + timedelta(minutes=k) for k in range(3)}
    async with services.sessions() as session:
        rows = (
            await session.execute(
                select(JobRun.schedule_id, JobRun.scheduled_for, func.count()).group_by(
                    JobRun.schedule_id, JobRun.scheduled_for
                )
            )
        ).all()
        next_runs = set(await session.scalars(select(JobSchedule.next_run_at)))
        pending = await session.scalar(
            select(func.count()).where(JobRun.status == RunStatus.PENDING.value)
        )
    assert len(rows) == 3 * count
    assert {row[2] for row in rows} == {1}
    by_schedule: dict[int, set[datetime]] = {}
    for schedule_id, fire, _ in rows:
        by_schedule.setdefault(schedule_id, set()).add(fire)
    assert len(by_schedule) == count
    assert all(fires == expected for fires in by_schedule.values())
    assert next_runs == {first + timedelta(minutes=3)}
    assert pending == 3 * count
    assert (
        await services.redis.zcard(services.keyspace.queue(services.settings.queues.default))
        == 3 * count
    )
    assert (await claim_due_schedules(services, NOW, 100)).claimed == 0


def _fires(start: datetime, count: int, minutes: int = 10) -> list[datetime]:
    return [start + timedelta(minutes=minutes * k) for k in range(count)]


async def test_misfire_skip_records_missed_fires_and_runs_the_one_on_time(
    services: Services,
) -> None:
    template_id = await make_template(services.sessions)
    first = NOW - timedelta(minutes=30, seconds=10)  # fires at -30:10 … -0:10
    schedule_id = await make_schedule(services.sessions, template_id, first, misfire_policy="skip")

    report = await claim_due_schedules(services, NOW, 10)

    runs = await _runs(services, schedule_id)
    assert [run.scheduled_for for run in runs] == _fires(first, 4)
    assert [run.status for run in runs] == ["skipped"] * 3 + ["pending"]
    assert {run.reason for run in runs[:3]} == {MISSED}
    assert report.queued == (runs[3].id,)
    assert report.skipped == 3
    assert await transport.is_queued(services.redis, runs[3].id)
    schedule = await _schedule(services, schedule_id)
    assert schedule.next_run_at == first + timedelta(minutes=40)
    assert schedule.last_run_at == NOW


async def test_misfire_skip_runs_nothing_when_every_fire_was_missed(services: Services) -> None:
    template_id = await make_template(services.sessions)
    first = NOW - timedelta(minutes=35)
    schedule_id = await make_schedule(services.sessions, template_id, first, misfire_policy="skip")

    report = await claim_due_schedules(services, NOW, 10)

    runs = await _runs(services, schedule_id)
    assert [(run.status, run.reason) for run in runs] == [("skipped", MISSED)] * 4
    assert report.queued == ()
    schedule = await _schedule(services, schedule_id)
    assert schedule.last_run_at is None
    assert schedule.next_run_at == NOW + timedelta(minutes=5)


async def test_misfire_run_once_runs_the_latest_fire(services: Services) -> None:
    template_id = await make_template(services.sessions)
    first = NOW - timedelta(minutes=35)
    schedule_id = await make_schedule(
        services.sessions, template_id, first, misfire_policy="run_once"
    )

    await claim_due_schedules(services, NOW, 10)

    runs = await _runs(services, schedule_id)
    assert [run.scheduled_for for run in runs] == _fires(first, 4)
    assert [run.status for run in runs] == ["skipped"] * 3 + ["pending"]
    assert runs[3].triggered_by == TriggeredBy.SCHEDULE.value


async def test_misfire_run_all_runs_up_to_the_cap(services: Services) -> None:
    template_id = await make_template(services.sessions)
    first = NOW - timedelta(minutes=35)
    capped = await make_schedule(
        services.sessions,
        template_id,
        first,
        misfire_policy="run_all",
        misfire_cap=2,
        job_identifier="capped",
    )
    uncapped = await make_schedule(
        services.sessions,
        template_id,
        first,
        misfire_policy="run_all",
        misfire_cap=10,
        job_identifier="uncapped",
    )

    await claim_due_schedules(services, NOW, 10)

    capped_runs = await _runs(services, capped)
    assert [run.status for run in capped_runs] == ["skipped", "skipped", "pending", "pending"]
    uncapped_runs = await _runs(services, uncapped)
    assert [run.status for run in uncapped_runs] == ["pending"] * 4
    assert [run.job_name for run in uncapped_runs] == ["uncapped"] * 4


async def _blocking_run(services: Services, schedule_id: int, template_id: int) -> int:
    async with services.sessions.begin() as session:
        (run_id,) = await insert_runs(
            session,
            [
                RunRequest(
                    job_type="diag.echo",
                    job_name="earlier",
                    queue=services.settings.queues.default,
                    parameters={},
                    triggered_by=TriggeredBy.SCHEDULE,
                    template_id=template_id,
                    schedule_id=schedule_id,
                    scheduled_for=NOW - timedelta(hours=1),
                )
            ],
        )
    return run_id


async def test_overlap_skip_names_the_blocking_run(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(services.sessions, template_id, NOW, overlap_policy="skip")
    blocking = await _blocking_run(services, schedule_id, template_id)

    report = await claim_due_schedules(services, NOW, 10)

    runs = await _runs(services, schedule_id)
    fire = next(run for run in runs if run.scheduled_for == NOW)
    assert fire.status == RunStatus.SKIPPED.value
    assert fire.reason == f"overlap: run {blocking} is still pending"
    assert report.queued == ()
    assert (await _schedule(services, schedule_id)).next_run_at == NOW + timedelta(minutes=10)


async def test_overlap_cancel_previous_cancels_then_runs(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(
        services.sessions, template_id, NOW, overlap_policy="cancel_previous"
    )
    blocking = await _blocking_run(services, schedule_id, template_id)

    report = await claim_due_schedules(services, NOW, 10)

    statuses = {run.id: run.status for run in await _runs(services, schedule_id)}
    assert statuses[blocking] == RunStatus.CANCELLED.value
    (new_run,) = report.queued
    assert statuses[new_run] == RunStatus.PENDING.value


async def test_overlap_queue_and_allow_run_beside_the_active_run(services: Services) -> None:
    template_id = await make_template(services.sessions)
    for policy in ("queue", "allow"):
        schedule_id = await make_schedule(
            services.sessions, template_id, NOW, overlap_policy=policy, job_identifier=policy
        )
        blocking = await _blocking_run(services, schedule_id, template_id)

        report = await claim_due_schedules(services, NOW, 10)

        statuses = {run.id: run.status for run in await _runs(services, schedule_id)}
        assert statuses[blocking] == RunStatus.PENDING.value
        (new_run,) = report.queued
        assert statuses[new_run] == RunStatus.PENDING.value


async def test_overlap_queue_starts_only_after_the_active_run_ends(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(
        services.sessions, template_id, NOW, overlap_policy="queue", job_identifier="serial"
    )
    blocking = await _blocking_run(services, schedule_id, template_id)
    report = await claim_due_schedules(services, NOW, 10)
    (waiting,) = report.queued
    async with services.sessions() as session:
        assert (await session.get_one(JobRun, waiting)).wait_for_run_id == blocking

    with pytest.raises(RunMustWait) as raised:
        await mark_running(services.sessions, waiting, "w")
    assert raised.value.blocking_run_id == blocking
    assert await mark_running(services.sessions, blocking, "w") is not None
    with pytest.raises(RunMustWait):
        await mark_running(services.sessions, waiting, "w")

    await finish_run(services.sessions, blocking, 1, RunEnd(status=RunStatus.COMPLETED))
    started = await mark_running(services.sessions, waiting, "w")
    assert started is not None
    assert started.attempt == 1


async def test_parameters_the_template_rejects_fail_the_fire_visibly(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(services.sessions, template_id, NOW, parameters={"bogus": 1})

    report = await claim_due_schedules(services, NOW, 10)

    (run,) = await _runs(services, schedule_id)
    assert run.status == RunStatus.FAILED.value
    assert "bogus" in (run.error or "")
    assert report.failed == 1
    assert (await _schedule(services, schedule_id)).next_run_at == NOW + timedelta(minutes=10)


async def test_a_schedule_past_its_end_stops(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(
        services.sessions,
        template_id,
        NOW,
        start_at=NOW - timedelta(hours=1),
        end_at=NOW + timedelta(minutes=5),
    )

    await claim_due_schedules(services, NOW, 10)

    assert [run.status for run in await _runs(services, schedule_id)] == ["pending"]
    assert (await _schedule(services, schedule_id)).next_run_at is None


async def test_not_due_inactive_and_locked_schedules_are_left_alone(services: Services) -> None:
    template_id = await make_template(services.sessions)
    later = await make_schedule(
        services.sessions, template_id, NOW + timedelta(seconds=1), job_identifier="later"
    )
    inactive = await make_schedule(
        services.sessions, template_id, NOW, is_active=False, job_identifier="inactive"
    )
    locked = await make_schedule(services.sessions, template_id, NOW, job_identifier="locked")
    async with services.sessions.begin() as session:
        await session.execute(select(JobSchedule).where(JobSchedule.id == locked).with_for_update())
        assert (await claim_due_schedules(services, NOW, 10)).claimed == 0
    for schedule_id in (later, inactive):
        assert await _runs(services, schedule_id) == []
    assert (await claim_due_schedules(services, NOW, 10)).claimed == 1


async def test_tick_claims_batch_after_batch_and_records_itself(services: Services) -> None:
    template_id = await make_template(services.sessions)
    await make_schedules(
        services.sessions,
        [schedule_row(template_id, f"s{i}", NOW - timedelta(seconds=5)) for i in range(25)],
    )
    small_batches = dataclasses.replace(
        services, settings=make_settings(scheduler=SchedulerSettings(batch=10))
    )

    report = await tick(small_batches, NOW)

    assert (report.claimed, report.queued) == (25, 25)
    assert report.lag == 5.0
    recorded = await last_tick(services.redis)
    assert recorded["at"] == NOW.isoformat()
    assert recorded["claimed"] == "25"
    assert float(recorded["duration"]) == round(report.duration, 6)


async def test_a_fire_that_already_has_a_run_gets_no_second_one(services: Services) -> None:
    template_id = await make_template(services.sessions)
    schedule_id = await make_schedule(services.sessions, template_id, NOW)
    existing = RunRequest(
        job_type="diag.echo",
        job_name="earlier claim",
        queue=services.settings.queues.default,
        parameters={},
        triggered_by=TriggeredBy.SCHEDULE,
        schedule_id=schedule_id,
        scheduled_for=NOW,
    )
    async with services.sessions.begin() as session:
        (first,) = await insert_runs(session, [existing])
    async with services.sessions.begin() as session:
        with pytest.raises(IntegrityError, match="uq_job_runs_schedule_fire"):
            await insert_runs(session, [existing])

    report = await claim_due_schedules(services, NOW, 10)

    assert report.queued == ()
    assert [run.id for run in await _runs(services, schedule_id)] == [first]
    assert (await _schedule(services, schedule_id)).next_run_at == NOW + timedelta(minutes=10)


async def test_claims_follow_the_wall_clock_across_spring_forward(services: Services) -> None:
    template_id = await make_template(services.sessions)
    # Europe/Berlin skips 02:00-03:00 on 29 March 2026: a daily 02:30 fires at 03:00 CEST.
    fire = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    schedule_id = await make_schedule(
        services.sessions,
        template_id,
        fire,
        schedule_type="daily",
        interval_minutes=None,
        time_of_day="02:30",
        timezone="Europe/Berlin",
    )

    await claim_due_schedules(services, fire + timedelta(seconds=1), 10)

    (run,) = await _runs(services, schedule_id)
    assert (run.scheduled_for, run.status) == (fire, "pending")
    schedule = await _schedule(services, schedule_id)
    assert schedule.next_run_at == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 02:30 CEST


async def test_a_template_of_a_job_type_no_longer_known_fails_each_fire(
    services: Services,
) -> None:
    template_id = await make_template(services.sessions, job_type="retired.type")
    schedule_id = await make_schedule(services.sessions, template_id, NOW)

    report = await claim_due_schedules(services, NOW, 10)

    (run,) = await _runs(services, schedule_id)
    assert (run.status, run.job_type) == (RunStatus.FAILED.value, "retired.type")
    assert "unknown job_type 'retired.type'" in (run.error or "")
    assert (report.failed, report.queued) == (1, ())
    assert (await _schedule(services, schedule_id)).next_run_at == NOW + timedelta(minutes=10)

"""Schedule health: a dead-man's switch, a pause after K failed runs, slow runs.

- ``expect_success_within`` (minutes): the last successful run (or the schedule's creation)
  older than that makes the schedule ``unhealthy`` (``schedule.unhealthy``); its next
  successful run makes it ``ok`` again (``schedule.recovered``).
- ``pause_after_failures``: K failed runs in a row deactivate the schedule, say why and who
  may resume it (its owner or an admin, by setting ``is_active``), ``schedule.paused``.
- ``duration_anomaly_factor`` k: a run longer than k × the p95 of the schedule's last 20
  completed runs (at least 5 of them) is a ``run.duration_anomaly`` warning.

Every change of health and its event are written in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import HealthState, JobRun, JobSchedule, JobTemplate, RunStatus
from service.db.notify_models import NotificationEvent
from service.notify.events import (
    EventDraft,
    EventName,
    Severity,
    Subject,
    run_link,
    schedule_link,
    when,
)
from service.settings import Settings

DURATION_SAMPLE = 20
DURATION_MIN_SAMPLES = 5
SILENT_BATCH = 500


async def after_run(
    session: AsyncSession, settings: Settings, schedule: JobSchedule, run: JobRun, subject: Subject
) -> list[EventDraft]:
    """Update the schedule's health for a run of it that ended; the events that follow."""
    await session.refresh(schedule, with_for_update=True)
    drafts: list[EventDraft] = []
    if run.status == RunStatus.FAILED.value:
        schedule.consecutive_failures += 1
        limit = schedule.pause_after_failures
        if limit is not None and schedule.consecutive_failures >= limit and schedule.is_active:
            drafts.append(_pause(settings, schedule, run, subject))
    elif run.status == RunStatus.COMPLETED.value:
        schedule.consecutive_failures = 0
        schedule.last_success_at = run.finished_at
        if schedule.health_state == HealthState.UNHEALTHY.value:
            drafts.append(_recovered(settings, schedule, run, subject))
        if schedule.health_state != HealthState.PAUSED.value:
            schedule.health_state = HealthState.OK.value
            schedule.health_reason = None
        slow = await _duration_anomaly(session, settings, schedule, run, subject)
        if slow is not None:
            drafts.append(slow)
    return drafts


def _pause(settings: Settings, schedule: JobSchedule, run: JobRun, subject: Subject) -> EventDraft:
    reason = (
        f"paused after {schedule.consecutive_failures} failed runs in a row (last: run {run.id}"
        f"{': ' + run.error if run.error else ''}); its owner ({schedule.owner or 'none'}) or "
        "an admin resumes it by setting is_active to true"
    )
    schedule.is_active = False
    schedule.next_run_at = None
    schedule.health_state = HealthState.PAUSED.value
    schedule.health_reason = reason
    return EventDraft(
        event=EventName.SCHEDULE_PAUSED,
        dedup_key=f"schedule:{schedule.id}:paused:{run.id}",
        subject=subject,
        severity=Severity.CRITICAL,
        title=f"Schedule {schedule.job_identifier} paused itself",
        message=(
            f"Schedule {schedule.job_identifier} (id {schedule.id}) {reason}.\n"
            f"{schedule_link(settings.api.public_url, schedule.id)}\n"
            f"{run_link(settings.api.public_url, run.id)}"
        ),
        since=run.finished_at,
        details={"schedule_id": schedule.id, "run_id": run.id, "reason": reason},
    )


def _recovered(
    settings: Settings, schedule: JobSchedule, run: JobRun, subject: Subject
) -> EventDraft:
    return EventDraft(
        event=EventName.SCHEDULE_RECOVERED,
        dedup_key=f"schedule:{schedule.id}:recovered:{run.id}",
        subject=subject,
        severity=Severity.INFO,
        title=f"Schedule {schedule.job_identifier} is healthy again",
        message=(
            f"Schedule {schedule.job_identifier} (id {schedule.id}) succeeded again with run "
            f"{run.id} at {when(run.finished_at)}; it was unhealthy: {schedule.health_reason}\n"
            f"{run_link(settings.api.public_url, run.id)}"
        ),
        since=run.finished_at,
        details={"schedule_id": schedule.id, "run_id": run.id},
    )


async def _duration_anomaly(
    session: AsyncSession, settings: Settings, schedule: JobSchedule, run: JobRun, subject: Subject
) -> EventDraft | None:
    factor = schedule.duration_anomaly_factor
    if factor is None or run.started_at is None or run.finished_at is None:
        return None
    recent = (
        select((func.extract("epoch", JobRun.finished_at - JobRun.started_at)).label("seconds"))
        .where(
            JobRun.schedule_id == schedule.id,
            JobRun.id < run.id,
            JobRun.status == RunStatus.COMPLETED.value,
            JobRun.started_at.is_not(None),
        )
        .order_by(JobRun.id.desc())
        .limit(DURATION_SAMPLE)
        .subquery()
    )
    samples, p95 = (
        await session.execute(
            select(
                func.count(),
                func.percentile_cont(0.95).within_group(recent.c.seconds),
            ).select_from(recent)
        )
    ).one()
    duration = (run.finished_at - run.started_at).total_seconds()
    if samples < DURATION_MIN_SAMPLES or p95 is None or duration <= factor * float(p95):
        return None
    return EventDraft(
        event=EventName.RUN_DURATION_ANOMALY,
        dedup_key=f"run:{run.id}:slow",
        subject=subject,
        severity=Severity.WARNING,
        title=f"Run {run.id} of {schedule.job_identifier} took {duration:.1f} s",
        message=(
            f"Run {run.id} of schedule {schedule.job_identifier} took {duration:.1f} s, more "
            f"than {factor:g} × the p95 ({float(p95):.1f} s) of its last {samples} runs.\n"
            f"{run_link(settings.api.public_url, run.id)}"
        ),
        since=run.started_at,
        details={"run_id": run.id, "duration_seconds": duration, "p95_seconds": float(p95)},
    )


async def mark_silent_schedules(session: AsyncSession, settings: Settings) -> int:
    """The dead-man's switch: active schedules whose last success is older than
    ``expect_success_within`` become unhealthy, each with its event; returns how many."""
    rows = (
        await session.execute(
            select(JobSchedule, JobTemplate.job_type)
            .join(JobTemplate, JobTemplate.id == JobSchedule.template_id)
            .where(
                JobSchedule.is_active,
                JobSchedule.expect_success_within.is_not(None),
                JobSchedule.health_state.in_([HealthState.OK.value, HealthState.UNKNOWN.value]),
                func.coalesce(JobSchedule.last_success_at, JobSchedule.created_at)
                < func.now() - func.make_interval(0, 0, 0, 0, 0, JobSchedule.expect_success_within),
            )
            .order_by(JobSchedule.id)
            .limit(SILENT_BATCH)
            .with_for_update(of=JobSchedule, skip_locked=True)
        )
    ).all()
    drafts = [_unhealthy(settings, schedule, job_type) for schedule, job_type in rows]
    if drafts:
        await session.execute(
            pg_insert(NotificationEvent)
            .values([draft.row() for draft in drafts])
            .on_conflict_do_nothing(constraint="uq_notification_events_dedup")
        )
    return len(drafts)


def _unhealthy(settings: Settings, schedule: JobSchedule, job_type: str) -> EventDraft:
    within = timedelta(minutes=schedule.expect_success_within or 0)
    last = schedule.last_success_at
    reason = f"no successful run within {_minutes(within)} (last success: {when(last)})"
    schedule.health_state = HealthState.UNHEALTHY.value
    schedule.health_reason = reason
    since: datetime = last or schedule.created_at
    return EventDraft(
        event=EventName.SCHEDULE_UNHEALTHY,
        dedup_key=f"schedule:{schedule.id}:unhealthy:{since.isoformat()}",
        subject=Subject(
            key=f"schedule:{schedule.id}",
            schedule_id=schedule.id,
            template_id=schedule.template_id,
            job_type=job_type,
            is_global=schedule.is_global,
            owner=schedule.owner,
        ),
        severity=Severity.CRITICAL,
        title=f"Schedule {schedule.job_identifier} has not succeeded for {_minutes(within)}",
        message=(
            f"Schedule {schedule.job_identifier} (id {schedule.id}): {reason}.\n"
            f"{schedule_link(settings.api.public_url, schedule.id)}"
        ),
        since=since,
        details={"schedule_id": schedule.id, "last_success_at": last.isoformat() if last else None},
    )


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")

"""Run facts become events: failed or lost runs, outcome changes, recoveries, slow runs.

Facts are read in outbox order by one pass at a time (``cycle``'s advisory lock),
so "the previous verdict" of a subject is always the one recorded before. Each pass
updates alert states and schedule health and stores its events in the same transaction
that marks its facts processed: a fact is interpreted once, its events never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import (
    JobRun,
    JobRunTarget,
    JobSchedule,
    JobTemplate,
    Outcome,
    RunStatus,
    TargetStatus,
)
from service.db.notify_models import AlertState, NotificationEvent, NotificationOutbox
from service.notify.events import EventDraft, EventName, Severity, Subject, run_link, when
from service.notify.outbox import FactKind
from service.notify.schedule_health import after_run
from service.settings import Settings

logger = logging.getLogger(__name__)

OUTCOMES_COMPARED = frozenset({Outcome.OK.value, Outcome.WARNING.value, Outcome.CRITICAL.value})
SEVERITY_OF_OUTCOME = {
    Outcome.OK.value: Severity.INFO,
    Outcome.WARNING.value: Severity.WARNING,
    Outcome.CRITICAL.value: Severity.CRITICAL,
}


@dataclass(frozen=True)
class FinishedRun:
    """A run fact with what the run's row and its schedule or template say."""

    fact_id: int
    kind: FactKind
    run: JobRun
    schedule: JobSchedule | None
    template: JobTemplate | None

    @property
    def subject(self) -> Subject:
        run = self.run
        owner_row: JobSchedule | JobTemplate | None = self.schedule or self.template
        if self.schedule is not None:
            key = f"schedule:{self.schedule.id}"
        elif self.template is not None:
            key = f"template:{self.template.id}"
        else:
            key = f"run:{run.id}"
        return Subject(
            key=key,
            run_id=run.id,
            schedule_id=run.schedule_id,
            template_id=run.template_id,
            job_type=run.job_type,
            # A private run is heard only by the principal it belongs to (invariant 12).
            is_global=run.private_to is None
            and (owner_row.is_global if owner_row is not None else True),
            owner=run.private_to or (owner_row.owner if owner_row is not None else run.executed_by),
        )


async def interpret_facts(session: AsyncSession, settings: Settings) -> int:
    """Turn unprocessed run facts into events in the caller's transaction, which holds the
    interpreter's lock; returns how many facts were read."""
    rows = (
        await session.execute(
            select(NotificationOutbox, JobRun, JobSchedule, JobTemplate)
            .outerjoin(JobRun, JobRun.id == NotificationOutbox.run_id)
            .outerjoin(JobSchedule, JobSchedule.id == JobRun.schedule_id)
            .outerjoin(JobTemplate, JobTemplate.id == JobRun.template_id)
            .where(text("NOT notification_outbox.processed"))
            .order_by(NotificationOutbox.id)
            .limit(settings.notify.batch)
        )
    ).all()
    drafts: list[EventDraft] = []
    for fact, run, schedule, template in rows:
        if run is None:
            continue  # deleted by retention before it was read
        finished = FinishedRun(fact.id, FactKind(fact.kind), run, schedule, template)
        drafts.extend(await _verdicts(session, settings, finished))
    if drafts:
        await session.execute(
            pg_insert(NotificationEvent)
            .values([draft.row() for draft in drafts])
            .on_conflict_do_nothing(constraint="uq_notification_events_dedup")
        )
    if rows:
        await session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id.in_([fact.id for fact, *_ in rows]))
            .values(processed=True)
        )
    return len(rows)


async def _verdicts(
    session: AsyncSession, settings: Settings, finished: FinishedRun
) -> list[EventDraft]:
    run = finished.run
    subject = finished.subject
    if finished.schedule is None and finished.template is None:
        # An ad-hoc run has no history to compare with: only its failure is news.
        return [await _failure(session, settings, finished, None)]
    state = await session.get(AlertState, subject.key, with_for_update=True)
    if state is None:
        state = AlertState(subject=subject.key)
        session.add(state)
    drafts: list[EventDraft] = []
    ended_at = run.finished_at or run.queued_at
    if run.status == RunStatus.FAILED.value:
        drafts.append(await _failure(session, settings, finished, state.failing_since))
        if state.failing_since is None:
            state.failing_since = ended_at
    elif run.status == RunStatus.COMPLETED.value:
        if state.failing_since is not None:
            drafts.append(_back_after_failure(settings, finished, state.failing_since))
            state.failing_since = None
        if run.outcome in OUTCOMES_COMPARED and run.outcome != state.outcome:
            if not (state.outcome is None and run.outcome == Outcome.OK.value):
                drafts.append(_outcome_changed(settings, finished, state))
            state.outcome = run.outcome
            state.outcome_since = ended_at
    state.last_run_id = run.id
    if finished.schedule is not None:
        drafts.extend(await after_run(session, settings, finished.schedule, run, subject))
    return drafts


async def _failure(
    session: AsyncSession, settings: Settings, finished: FinishedRun, failing_since: datetime | None
) -> EventDraft:
    run = finished.run
    lost = finished.kind is FactKind.LOST
    failed_targets: list[str] = []
    total_targets = counted = 0
    if run.targets:
        failed_targets, total_targets = await _failed_targets(
            session, run.id, settings.notify.max_listed_targets
        )
        counted = await _count_failed_targets(session, run.id) if failed_targets else 0
    where = _where(finished)
    what = "lost its worker" if lost else "failed"
    lines = [f"{run.job_name} ({run.job_type}) {what}: {run.error or run.summary or 'no error'}"]
    if counted:
        listed = ", ".join(failed_targets)
        more = counted - len(failed_targets)
        lines.append(
            f"{counted} of {total_targets} targets failed: {listed}"
            + (f" and {more} more" if more > 0 else "")
        )
    lines.append(f"{where}; failing since {when(failing_since or run.finished_at)}")
    lines.append(run_link(settings.api.public_url, run.id))
    return EventDraft(
        event=EventName.RUN_LOST if lost else EventName.RUN_FAILED,
        dedup_key=f"run:{run.id}",
        subject=finished.subject,
        severity=Severity.CRITICAL,
        title=f"Run {run.id} of {run.job_name} {what}",
        message="\n".join(lines),
        since=failing_since or run.finished_at,
        details=_run_details(settings, run)
        | {"failed_targets": failed_targets, "failed_target_count": counted},
    )


def _back_after_failure(
    settings: Settings, finished: FinishedRun, failing_since: datetime
) -> EventDraft:
    run = finished.run
    return EventDraft(
        event=EventName.RUN_SUCCEEDED_AFTER_FAILURE,
        dedup_key=f"{finished.subject.key}:succeeded:{run.id}",
        subject=finished.subject,
        severity=Severity.INFO,
        title=f"{run.job_name} succeeded again (run {run.id})",
        message=(
            f"{run.job_name} ({run.job_type}) completed with outcome {run.outcome} after "
            f"failing since {when(failing_since)}; {_where(finished)}\n"
            f"{run_link(settings.api.public_url, run.id)}"
        ),
        since=failing_since,
        details=_run_details(settings, run),
    )


def _outcome_changed(settings: Settings, finished: FinishedRun, state: AlertState) -> EventDraft:
    run = finished.run
    previous = state.outcome or "none"
    outcome = run.outcome or Outcome.UNKNOWN.value
    recovered = outcome == Outcome.OK.value
    verb = "recovered" if recovered else "is now"
    return EventDraft(
        event=EventName.RUN_OUTCOME_CHANGED,
        dedup_key=f"{finished.subject.key}:outcome:{run.id}",
        subject=finished.subject,
        severity=SEVERITY_OF_OUTCOME.get(outcome, Severity.WARNING),
        title=f"{run.job_name} {verb} {outcome} (was {previous})",
        message=(
            f"{run.job_name} ({run.job_type}) {verb} {outcome}, previously {previous} since "
            f"{when(state.outcome_since)}: {run.summary or ''}\n{_where(finished)}\n"
            f"{run_link(settings.api.public_url, run.id)}"
        ),
        since=run.finished_at,
        details=_run_details(settings, run) | {"previous_outcome": state.outcome},
    )


def _where(finished: FinishedRun) -> str:
    if finished.schedule is not None:
        return f"schedule {finished.schedule.job_identifier} (id {finished.schedule.id})"
    if finished.template is not None:
        return f"template {finished.template.name} (id {finished.template.id})"
    return f"ad-hoc run on queue {finished.run.queue}"


def _run_details(settings: Settings, run: JobRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "job_name": run.job_name,
        "status": run.status,
        "outcome": run.outcome,
        "summary": run.summary,
        "error": run.error,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "link": run_link(settings.api.public_url, run.id),
    }


async def _failed_targets(session: AsyncSession, run_id: int, limit: int) -> tuple[list[str], int]:
    """Names of the first ``limit`` failed targets, and how many targets the run had."""
    names = list(
        await session.scalars(
            select(JobRunTarget.name)
            .where(JobRunTarget.run_id == run_id, JobRunTarget.status == TargetStatus.FAILED.value)
            .order_by(JobRunTarget.position)
            .limit(limit)
        )
    )
    total = await session.scalar(
        select(func.count()).select_from(JobRunTarget).where(JobRunTarget.run_id == run_id)
    )
    return names, total or 0


async def _count_failed_targets(session: AsyncSession, run_id: int) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(JobRunTarget)
            .where(JobRunTarget.run_id == run_id, JobRunTarget.status == TargetStatus.FAILED.value)
        )
        or 0
    )

"""How a run reads to its watchers: the run, its progress and its target rows.

The API answers with these models and the console renders them, so both show the same
duration, percentage and statuses.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from service.db.models import JobRun, JobRunTarget, Outcome, RunStatus, TargetStatus, TriggeredBy
from service.db.paging import Page
from service.runs.reporting import Progress
from service.runs.retries import RetryPolicy


class ProgressOut(BaseModel):
    current: int | None = None
    total: int | None = None
    percent: float | None = None
    message: str | None = None


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_name: str
    job_type: str
    template_id: int | None
    schedule_id: int | None
    retry_of_id: int | None
    scheduled_for: datetime | None
    queue: str
    status: RunStatus
    outcome: Outcome | None
    triggered_by: TriggeredBy
    executed_by: str | None
    private_to: str | None = Field(
        description="the user a run that used a private resource belongs to; null: global"
    )
    parameters: dict[str, Any]
    targets: list[Any] | None
    attempt: int
    max_attempts: int
    retry: RetryPolicy = Field(description="the retry policy; max_attempts is its own")
    retry_at: datetime | None = Field(
        description="while pending between attempts: when the next attempt is due"
    )
    timeout_seconds: int | None
    worker_id: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested_at: datetime | None
    cancelled_by: str | None
    duration_seconds: float | None
    progress: ProgressOut
    summary: str | None
    result: dict[str, Any] | None
    error: str | None
    reason: str | None

    @classmethod
    def of(cls, run: JobRun | Row[Any], **extra: Any) -> Self:
        """The run as answered; ``extra`` fills the fields a subclass adds."""
        duration = None
        if run.started_at is not None and run.finished_at is not None:
            duration = round((run.finished_at - run.started_at).total_seconds(), 3)
        progress = ProgressOut()
        if run.progress_current is not None:
            snapshot = Progress(run.progress_current, run.progress_total, run.progress_message)
            progress = ProgressOut(
                current=snapshot.current,
                total=snapshot.total,
                percent=snapshot.percent,
                message=snapshot.message,
            )
        # A page holds up to 100 runs: read a row's mapping or an instance's own dict
        # (ORM attribute access costs more than the rest of this method), the attribute
        # only for a column an instance has not loaded.
        loaded = run._mapping if isinstance(run, Row) else run.__dict__
        values = {
            name: loaded[name] if name in loaded else getattr(run, name) for name in _READ_COLUMNS
        }
        stored = values.pop("retry_policy")
        values.update(
            duration_seconds=duration,
            progress=progress,
            retry=_policy(values["max_attempts"], stored),
            **extra,
        )
        if values["status"] != RunStatus.PENDING.value:
            values["retry_at"] = None  # the attempt it waited for has started
        return cls.model_validate(values)


_RUN_COLUMNS = tuple(name for name in RunOut.model_fields if name in JobRun.__table__.c)
# The policy's column besides max_attempts, read to show the whole policy.
_READ_COLUMNS = (*_RUN_COLUMNS, "retry_policy")


@functools.lru_cache(maxsize=16)
def _default_policy(max_attempts: int) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts)


def _policy(max_attempts: int, stored: dict[str, Any] | None) -> RetryPolicy:
    if stored is None:
        return _default_policy(max_attempts)
    return RetryPolicy.of(max_attempts, stored)


class AttemptOut(BaseModel):
    """One attempt of a run. ``failure`` says which failure ended an attempt in a retry
    (failed, lost or timeout); ``targets`` (attempts list only) are its target rows."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    # The run's status for its latest attempt; failed or interrupted for a kept one.
    status: str
    failure: str | None = None
    started_at: datetime | None
    finished_at: datetime | None
    outcome: Outcome | None
    summary: str | None
    error: str | None
    result: dict[str, Any] | None
    targets: list[Any] | None = None


class TargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    key: str
    name: str
    status: TargetStatus
    outcome: Outcome | None
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


class RunDetailOut(RunOut):
    attempts: list[AttemptOut]
    target_counts: dict[str, int]
    target_rows: Page[TargetOut]


class RunProgressOut(ProgressOut):
    run_id: int
    status: RunStatus
    outcome: Outcome | None

    @classmethod
    def of(cls, run: JobRun) -> RunProgressOut:
        progress = Progress(run.progress_current or 0, run.progress_total, run.progress_message)
        return cls(
            run_id=run.id,
            status=RunStatus(run.status),
            outcome=Outcome(run.outcome) if run.outcome else None,
            current=run.progress_current,
            total=run.progress_total,
            percent=progress.percent,
            message=run.progress_message,
        )


def target_out(target: JobRunTarget) -> TargetOut:
    return TargetOut.model_validate(target)

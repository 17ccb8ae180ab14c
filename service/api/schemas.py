"""Response and request models shared by the routers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from service.db.models import JobRun, JobRunTarget, Outcome, RunStatus, TargetStatus, TriggeredBy
from service.reporting import Progress

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    page: int
    page_size: int
    total_pages: int


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
    parameters: dict[str, Any]
    targets: list[Any] | None
    attempt: int
    max_attempts: int
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
    def of(cls, run: JobRun) -> RunOut:
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
        values = {name: getattr(run, name) for name in cls.model_fields if hasattr(run, name)}
        values.update(duration_seconds=duration, progress=progress)
        return cls.model_validate(values)


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
    target_counts: dict[str, int]
    target_rows: Page[TargetOut]


class RunProgressOut(ProgressOut):
    run_id: int
    status: RunStatus
    outcome: Outcome | None


class CreateRunIn(BaseModel):
    """An ad-hoc run of a job type; parameters are validated against its Config."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)


class CancelOut(BaseModel):
    run_id: int
    status: RunStatus


def target_out(target: JobRunTarget) -> TargetOut:
    return TargetOut.model_validate(target)

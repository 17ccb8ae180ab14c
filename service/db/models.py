"""ORM models: the record of truth for templates, schedules, runs and their targets."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class RunStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED}
)
ACTIVE_STATUSES = frozenset({RunStatus.PENDING, RunStatus.RUNNING})


class Outcome(enum.StrEnum):
    """What the job found, independent of whether the run itself worked."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class TriggeredBy(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    SYSTEM = "system"
    API = "api"
    # A new run made by retrying a finished one (``retry_of_id`` names it).
    RETRY = "retry"


class TargetStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Not acted on: the device was in a maintenance window when the run reached it.
    SKIPPED = "skipped"


class HealthState(enum.StrEnum):
    """A schedule's health: ``unknown`` until its first verdict."""

    UNKNOWN = "unknown"
    OK = "ok"
    UNHEALTHY = "unhealthy"
    PAUSED = "paused"


def sql_values(enum_cls: type[enum.StrEnum]) -> str:
    """The enum's values as a SQL list for CHECK constraints."""
    return ", ".join(f"'{member.value}'" for member in enum_cls)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
    }


class JobTemplate(Base):
    __tablename__ = "job_templates"
    __table_args__ = (
        Index(
            "uq_job_templates_global_name", "name", unique=True, postgresql_where=text("is_global")
        ),
        Index(
            "uq_job_templates_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint("timeout_seconds IS NULL OR timeout_seconds > 0", name="timeout_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    job_type: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    queue: Mapped[str | None] = mapped_column(String(64))
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # The rest of the retry policy (``service.runs.retries``); NULL: the default, lost only.
    retry_policy: Mapped[dict[str, Any] | None] = mapped_column()
    # Runs of this template at once across every worker (a Redis lease each); None: no cap.
    max_concurrent_runs: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    @property
    def retry(self) -> dict[str, Any]:
        """The whole retry policy as stored: ``retry_policy`` with ``max_attempts``."""
        return {**(self.retry_policy or {}), "max_attempts": self.max_attempts}


class JobSchedule(Base):
    __tablename__ = "job_schedules"
    __table_args__ = (
        Index(
            "ix_job_schedules_due",
            "next_run_at",
            postgresql_where=text("is_active AND next_run_at IS NOT NULL"),
        ),
        CheckConstraint(f"health_state IN ({sql_values(HealthState)})", name="health_state"),
        # The dead-man's switch looks at these every notification pass.
        Index(
            "ix_job_schedules_watched",
            "id",
            postgresql_where=text("is_active AND expect_success_within IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_identifier: Mapped[str] = mapped_column(String(255), unique=True)
    # RESTRICT: deleting a template never deletes its schedules silently.
    template_id: Mapped[int] = mapped_column(
        ForeignKey("job_templates.id", ondelete="RESTRICT"), index=True
    )
    schedule_type: Mapped[str] = mapped_column(String(16))
    interval_minutes: Mapped[int | None] = mapped_column(Integer)
    time_of_day: Mapped[str | None] = mapped_column(String(5))
    weekdays: Mapped[list[Any] | None] = mapped_column()
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    cron_expression: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    start_at: Mapped[datetime | None] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    credential_id: Mapped[int | None] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    misfire_policy: Mapped[str] = mapped_column(
        String(16), default="run_once", server_default="run_once"
    )
    misfire_cap: Mapped[int] = mapped_column(Integer, default=10, server_default=text("10"))
    overlap_policy: Mapped[str] = mapped_column(String(16), default="skip", server_default="skip")
    last_run_at: Mapped[datetime | None] = mapped_column()
    next_run_at: Mapped[datetime | None] = mapped_column()
    # Health (all optional): a dead-man's switch in minutes, a pause after K failed runs in
    # a row, and a duration anomaly factor over the p95 of the last 20 runs.
    expect_success_within: Mapped[int | None] = mapped_column(Integer)
    pause_after_failures: Mapped[int | None] = mapped_column(Integer)
    duration_anomaly_factor: Mapped[float | None] = mapped_column(Float)
    health_state: Mapped[str] = mapped_column(
        String(16), default=HealthState.UNKNOWN, server_default=HealthState.UNKNOWN.value
    )
    health_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_success_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_values(RunStatus)})", name="status"),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({sql_values(Outcome)})", name="outcome"),
        CheckConstraint(f"triggered_by IN ({sql_values(TriggeredBy)})", name="triggered_by"),
        # Invariant 8: one run per schedule fire, whatever the number of schedulers.
        UniqueConstraint("schedule_id", "scheduled_for", name="uq_job_runs_schedule_fire"),
        Index("ix_job_runs_queued_at_id", text("queued_at DESC"), text("id DESC")),
        Index("ix_job_runs_status_queued_at", "status", text("queued_at DESC")),
        Index("ix_job_runs_job_type_queued_at", "job_type", text("queued_at DESC")),
        # Listing by job type and status (the run list's usual filter): the page in index
        # order, and the total counted from the index alone — for readers who are not
        # admins too, as the index carries what decides whether they see a run.
        Index(
            "ix_job_runs_job_type_status_queued_at",
            "job_type",
            "status",
            text("queued_at DESC"),
            text("id DESC"),
            postgresql_include=["private_to"],
        ),
        # Readers who are not admins see global runs and their own private ones; where
        # others' private runs are most of the table the planner combines both from here.
        Index("ix_job_runs_private_to", "private_to"),
        # The scheduler's overlap check: the active run of each claimed schedule.
        Index(
            "ix_job_runs_active_schedule",
            "schedule_id",
            postgresql_where=text("schedule_id IS NOT NULL AND status IN ('pending', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_templates.id", ondelete="SET NULL"), index=True
    )
    # Indexed by uq_job_runs_schedule_fire, whose first column it is.
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_schedules.id", ondelete="SET NULL")
    )
    retry_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_runs.id", ondelete="SET NULL"), index=True
    )
    # Overlap policy "queue": this run starts only once that run has ended.
    wait_for_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_runs.id", ondelete="SET NULL")
    )
    scheduled_for: Mapped[datetime | None] = mapped_column()
    job_name: Mapped[str] = mapped_column(String(255))
    job_type: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.PENDING)
    outcome: Mapped[str | None] = mapped_column(String(16))
    triggered_by: Mapped[str] = mapped_column(String(16))
    executed_by: Mapped[str | None] = mapped_column(String(255))
    # The principal a run that used a private resource belongs to; NULL for a global run.
    private_to: Mapped[str | None] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credential_id: Mapped[int | None] = mapped_column(Integer)
    targets: Mapped[list[Any] | None] = mapped_column()
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # The rest of the retry policy, copied from the template or the request; NULL: default.
    retry_policy: Mapped[dict[str, Any] | None] = mapped_column()
    # When a pending run waiting to be retried may start its next attempt.
    retry_at: Mapped[datetime | None] = mapped_column()
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    queued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    cancel_requested_at: Mapped[datetime | None] = mapped_column()
    cancelled_by: Mapped[str | None] = mapped_column(String(255))
    progress_current: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class JobRunTarget(Base):
    __tablename__ = "job_run_targets"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_job_run_targets_run_key"),
        CheckConstraint(f"status IN ({sql_values(TargetStatus)})", name="status"),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({sql_values(Outcome)})", name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=TargetStatus.PENDING)
    outcome: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class AttemptStatus(enum.StrEnum):
    """How a kept attempt ended (the latest attempt's status is the run's)."""

    # It failed and the run's retry policy started another attempt.
    FAILED = "failed"
    # Its worker shut down and gave the run back to the queue.
    INTERRUPTED = "interrupted"


class JobRunAttempt(Base):
    """An attempt of a run that did not end the run, with what it found.

    The run row holds its latest attempt; each earlier one is kept here (a failed one with
    its result and a snapshot of its target rows: the next attempt resolves them afresh).
    """

    __tablename__ = "job_run_attempts"
    __table_args__ = (
        UniqueConstraint("run_id", "attempt", name="uq_job_run_attempts_run_attempt"),
        CheckConstraint(f"status IN ({sql_values(AttemptStatus)})", name="status"),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({sql_values(Outcome)})", name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # an AttemptStatus
    # Which failure ended it: failed, lost or timeout (the retry policy's ``on`` values).
    failure: Mapped[str | None] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column(server_default=func.now())
    outcome: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    targets: Mapped[list[Any] | None] = mapped_column()

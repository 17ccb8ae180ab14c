"""A run's retry policy: which failures start another attempt of the same run, and when.

A policy is ``max_attempts`` (the run's own column) plus what is stored as the run's
``retry_policy``: a backoff and the failures that count (``on``). An attempt that ends in
a failure the policy covers, with attempts left, does not end the run: it is kept in
``job_run_attempts`` (result, error and a snapshot of its target rows, invariant 4) and
the run goes back to ``pending`` with ``retry_at`` set, by one guarded transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import String, Text, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import SessionFactory
from service.db.models import (
    AttemptStatus,
    JobRun,
    JobRunAttempt,
    JobRunTarget,
    Outcome,
    RunStatus,
)
from service.errors import InvalidInput
from service.runs.lifecycle import close_open_targets

MAX_ATTEMPTS = 10
# A backoff longer than a week would outlive the queued job's expiry in Redis.
MAX_BACKOFF_S = 7 * 24 * 3600.0
DEFAULT_MAX_BACKOFF_S = 3600.0
DEFAULT_BACKOFF_FACTOR = 2.0


class RetryOn(enum.StrEnum):
    """The failures a policy may retry."""

    # The executor ended the attempt failed (a warning or critical outcome is a verdict of
    # a completed run, not a failure).
    FAILED = "failed"
    # The worker running it was lost (its heartbeat expired; found by the reaper).
    LOST = "lost"
    # The attempt exceeded its time limit.
    TIMEOUT = "timeout"


Seconds = Annotated[float, Field(ge=0, le=MAX_BACKOFF_S)]


class RetryPolicy(BaseModel):
    """How often a run is attempted and how long it waits between attempts.

    The wait before attempt ``n + 1`` is
    ``min(backoff_seconds * backoff_factor ** (n - 1), max_backoff_seconds)``.
    The default retries only a lost worker, at once, within ``max_attempts``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS)
    backoff_seconds: Seconds = 0.0
    backoff_factor: float = Field(default=DEFAULT_BACKOFF_FACTOR, ge=1, le=100)
    max_backoff_seconds: Seconds = DEFAULT_MAX_BACKOFF_S
    on: list[RetryOn] = Field(default_factory=lambda: [RetryOn.LOST], max_length=len(RetryOn))

    @field_validator("on")
    @classmethod
    def _distinct(cls, value: list[RetryOn]) -> list[RetryOn]:
        if len(set(value)) != len(value):
            raise ValueError("each failure may be named once")
        return value

    def stored(self) -> dict[str, Any] | None:
        """The ``retry_policy`` column's value: all but ``max_attempts`` (a column of its
        own); None when that is the default, so defaults stay defaults."""
        rest = self.model_dump(mode="json", exclude={"max_attempts"})
        default = RetryPolicy().model_dump(mode="json", exclude={"max_attempts"})
        return None if rest == default else rest

    @classmethod
    def of(cls, max_attempts: int, stored: Mapping[str, Any] | None) -> RetryPolicy:
        """The policy of a template or run from its two columns."""
        return cls.model_validate({**(stored or {}), "max_attempts": max_attempts})

    def covers(self, failure: RetryOn) -> bool:
        return failure in self.on

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (1-based) before the next one."""
        return backoff_delay(
            attempt, self.backoff_seconds, self.backoff_factor, self.max_backoff_seconds
        )


def backoff_delay(attempt: int, base: float, factor: float, cap: float) -> float:
    """``min(base * factor ** (attempt - 1), cap)``, for attempt ≥ 1."""
    if base <= 0:
        return 0.0
    exponent = max(0, attempt - 1)
    # factor ≥ 1: once past the cap it stays past it (and the power cannot overflow).
    delay = base
    for _ in range(exponent):
        delay *= factor
        if delay >= cap:
            return float(cap)
    return float(min(delay, cap))


def resolve_policy(
    retry: RetryPolicy | None, max_attempts: int | None, *, field: str = "max_attempts"
) -> RetryPolicy:
    """One policy from a request's ``retry`` object and its older ``max_attempts`` field.

    ``max_attempts`` alone keeps its meaning (lost workers only); given with ``retry`` it
    must agree with ``retry.max_attempts``.
    """
    if retry is None:
        return RetryPolicy(max_attempts=max_attempts or 1)
    if max_attempts is not None and "max_attempts" not in retry.model_fields_set:
        return retry.model_copy(update={"max_attempts": max_attempts})
    if max_attempts is not None and max_attempts != retry.max_attempts:
        raise InvalidInput(
            f"{field} and retry.max_attempts disagree; give one of them",
            details=[{"loc": ["body", field], "msg": "differs from retry.max_attempts"}],
        )
    return retry


@dataclass(frozen=True)
class RetryScheduled:
    """An attempt ended in a retry: the run is pending until ``retry_at``."""

    run_id: int
    attempt: int
    max_attempts: int
    failure: RetryOn
    delay: float
    retry_at: datetime
    queue: str


@dataclass(frozen=True)
class AttemptEnd:
    """How a failed attempt ended, as the worker or the reaper saw it."""

    failure: RetryOn
    error: str | None
    summary: str | None = None
    result: dict[str, Any] | None = None
    outcome: str | None = Outcome.UNKNOWN.value


async def schedule_retry(
    sessions: SessionFactory, run_id: int, attempt: int, end: AttemptEnd
) -> RetryScheduled | None:
    """Turn a failed running attempt into a retry if the run's policy allows one.

    None when it does not (the caller ends the run as usual), or when the run is no longer
    running under ``attempt`` or a cancel was requested.
    """
    async with sessions.begin() as session:
        row = (
            await session.execute(
                select(
                    JobRun.max_attempts,
                    JobRun.retry_policy,
                    JobRun.cancel_requested_at,
                    JobRun.queue,
                )
                .where(
                    JobRun.id == run_id,
                    JobRun.attempt == attempt,
                    JobRun.status == RunStatus.RUNNING.value,
                )
                .with_for_update()
            )
        ).one_or_none()
        if row is None or row.cancel_requested_at is not None:
            return None
        policy = RetryPolicy.of(row.max_attempts, row.retry_policy)
        if attempt >= policy.max_attempts or not policy.covers(end.failure):
            return None
        return await retry_locked(session, run_id, attempt, row.queue, policy, end)


async def retry_locked(
    session: AsyncSession,
    run_id: int,
    attempt: int,
    queue: str,
    policy: RetryPolicy,
    end: AttemptEnd,
) -> RetryScheduled:
    """Keep the attempt and make the run pending until its next attempt is due; the run
    row is locked by the caller and known to be running under ``attempt``."""
    delay = policy.delay_after(attempt)
    await close_open_targets(session, run_id)
    targets = await _target_snapshot(session, run_id)
    await session.execute(
        insert(JobRunAttempt).from_select(
            _ATTEMPT_COLUMNS,
            select(
                JobRun.id,
                JobRun.attempt,
                literal(AttemptStatus.FAILED.value, String),
                literal(end.failure.value, String),
                JobRun.worker_id,
                JobRun.started_at,
                literal(end.outcome, String),
                literal(end.summary, Text),
                literal(end.result, JobRunAttempt.result.type),
                literal(end.error, Text),
                literal(targets, JobRunAttempt.targets.type),
            ).where(JobRun.id == run_id),
        )
    )
    retry_at = (
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.attempt == attempt)
            .values(
                status=RunStatus.PENDING.value,
                retry_at=func.now() + timedelta(seconds=delay),
                queued_at=func.now(),
                worker_id=None,
                heartbeat_at=None,
                summary=end.summary,
                result=end.result,
                error=end.error,
                reason=_reason(end, attempt, policy.max_attempts),
            )
            .returning(JobRun.retry_at)
        )
    ).scalar_one()
    assert retry_at is not None  # just set
    return RetryScheduled(
        run_id=run_id,
        attempt=attempt,
        max_attempts=policy.max_attempts,
        failure=end.failure,
        delay=delay,
        retry_at=retry_at,
        queue=queue,
    )


async def record_interrupted(
    sessions: SessionFactory, run_id: int, attempt: int, worker_id: str, reason: str
) -> None:
    """Keep an attempt whose worker shut down and gave the run back to the queue (the run's
    next attempt gets the next number, so the list has no gap)."""
    async with sessions.begin() as session:
        await session.execute(
            pg_insert(JobRunAttempt)
            .from_select(
                ["run_id", "attempt", "status", "worker_id", "started_at", "error"],
                select(
                    JobRun.id,
                    JobRun.attempt,
                    literal(AttemptStatus.INTERRUPTED.value, String),
                    literal(worker_id, String),
                    JobRun.started_at,
                    literal(reason, Text),
                ).where(
                    JobRun.id == run_id,
                    JobRun.attempt == attempt,
                    JobRun.status == RunStatus.PENDING.value,
                ),
            )
            .on_conflict_do_nothing()
        )


_ATTEMPT_COLUMNS = [
    "run_id",
    "attempt",
    "status",
    "failure",
    "worker_id",
    "started_at",
    "outcome",
    "summary",
    "result",
    "error",
    "targets",
]


def _reason(end: AttemptEnd, attempt: int, max_attempts: int) -> str:
    what = {
        RetryOn.FAILED: "failed",
        RetryOn.LOST: "worker lost",
        RetryOn.TIMEOUT: "timed out",
    }[end.failure]
    if end.failure is RetryOn.LOST:
        # The wording operators (and alerts) have always seen for a lost worker's retry.
        return f"{what} during attempt {attempt}; retrying"
    return f"attempt {attempt} of {max_attempts} {what}; retrying"


async def _target_snapshot(session: AsyncSession, run_id: int) -> list[dict[str, Any]] | None:
    rows = (
        await session.execute(
            select(
                JobRunTarget.position,
                JobRunTarget.key,
                JobRunTarget.name,
                JobRunTarget.status,
                JobRunTarget.outcome,
                JobRunTarget.started_at,
                JobRunTarget.finished_at,
                JobRunTarget.result,
                JobRunTarget.error,
            )
            .where(JobRunTarget.run_id == run_id)
            .order_by(JobRunTarget.position)
        )
    ).all()
    if not rows:
        return None
    return [
        {
            **row._asdict(),
            "started_at": row.started_at.isoformat() if row.started_at else None,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        }
        for row in rows
    ]

"""Reading runs for people: filtered pages, one run with its targets, the failed targets.

The API routers and the console read runs through these functions only, so which runs a
caller sees is decided here, once: ``runs_visible_to`` (a run that used a private resource
is seen only by the principal it ran as and admins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principals import Principal
from service.access.visibility import may_see_run, runs_visible_to
from service.db.models import (
    JobRun,
    JobRunAttempt,
    JobRunTarget,
    Outcome,
    RunStatus,
    TargetStatus,
    TriggeredBy,
)
from service.db.paging import Page, paginate
from service.errors import InvalidInput, NotFound
from service.runs.views import AttemptOut, RunDetailOut, RunOut, TargetOut, target_out

#: The longest free-text filter (a name, a user or words of a summary).
MAX_TEXT_FILTER = 200


def split_filter(raw: str | None, field: str, allowed: set[str] | None = None) -> list[str]:
    """A comma-separated filter value; unknown values are a 422 naming the field."""
    if raw is None:
        return []
    values = [part.strip() for part in raw.split(",") if part.strip()]
    if allowed is not None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise InvalidInput(
                f"unknown {field}: {', '.join(unknown)}",
                details=[
                    {"loc": ["query", field], "msg": f"allowed: {', '.join(sorted(allowed))}"}
                ],
            )
    return values


def _int_list(raw: str | None, field: str) -> list[int]:
    try:
        return [int(value) for value in split_filter(raw, field)]
    except ValueError:
        raise InvalidInput(
            f"{field} must be comma-separated integers",
            details=[{"loc": ["query", field], "msg": "not an integer"}],
        ) from None


@dataclass(frozen=True)
class RunFilters:
    """Which runs a list shows; every field empty means "all"."""

    statuses: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    triggered_by: tuple[str, ...] = ()
    template_ids: tuple[int, ...] = ()
    schedule_ids: tuple[int, ...] = ()
    text: str = ""

    @classmethod
    def parse(
        cls,
        *,
        status: str | None = None,
        outcome: str | None = None,
        job_type: str | None = None,
        triggered_by: str | None = None,
        template_id: str | None = None,
        schedule_id: str | None = None,
        text: str | None = None,
    ) -> RunFilters:
        """Filters from query values (comma-separated lists); bad values name their field."""
        words = (text or "").strip()
        if len(words) > MAX_TEXT_FILTER:
            raise InvalidInput(
                f"q is longer than {MAX_TEXT_FILTER} characters",
                details=[{"loc": ["query", "q"], "msg": "too long"}],
            )
        return cls(
            statuses=tuple(split_filter(status, "status", {s.value for s in RunStatus})),
            outcomes=tuple(split_filter(outcome, "outcome", {o.value for o in Outcome})),
            job_types=tuple(split_filter(job_type, "job_type")),
            triggered_by=tuple(
                split_filter(triggered_by, "triggered_by", {t.value for t in TriggeredBy})
            ),
            template_ids=tuple(_int_list(template_id, "template_id")),
            schedule_ids=tuple(_int_list(schedule_id, "schedule_id")),
            text=words,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.statuses:
            conditions.append(JobRun.status.in_(self.statuses))
        if self.outcomes:
            conditions.append(JobRun.outcome.in_(self.outcomes))
        if self.job_types:
            conditions.append(JobRun.job_type.in_(self.job_types))
        if self.triggered_by:
            conditions.append(JobRun.triggered_by.in_(self.triggered_by))
        if self.template_ids:
            conditions.append(JobRun.template_id.in_(self.template_ids))
        if self.schedule_ids:
            conditions.append(JobRun.schedule_id.in_(self.schedule_ids))
        if self.text:
            pattern = (
                "%" + self.text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            )
            conditions.append(
                or_(
                    JobRun.job_name.ilike(pattern),
                    JobRun.executed_by.ilike(pattern),
                    JobRun.summary.ilike(pattern),
                )
            )
        return conditions


async def list_runs(
    session: AsyncSession,
    caller: Principal,
    filters: RunFilters,
    *,
    page: int,
    page_size: int,
) -> Page[RunOut]:
    """The caller's page of runs matching ``filters``, newest first."""
    return await paginate(
        session,
        JobRun,
        where=[runs_visible_to(caller), *filters.conditions()],
        order_by=[JobRun.queued_at.desc(), JobRun.id.desc()],
        page=page,
        page_size=page_size,
        to_item=RunOut.of,
        as_rows=True,
    )


async def runs_by_id(session: AsyncSession, caller: Principal, run_ids: list[int]) -> list[RunOut]:
    """The runs among ``run_ids`` that exist, for refreshing rows of a list."""
    if not run_ids:
        return []
    rows = await session.execute(
        select(*JobRun.__table__.c).where(JobRun.id.in_(run_ids), runs_visible_to(caller))
    )
    return [RunOut.of(row) for row in rows]


async def get_run(session: AsyncSession, caller: Principal, run_id: int) -> JobRun:
    """The run, or 404 when it does not exist for this caller."""
    run = await session.get(JobRun, run_id)
    if run is None or not may_see_run(caller, run.private_to):
        raise NotFound(f"run {run_id} does not exist")
    return run


async def target_page(
    session: AsyncSession, run_id: int, *, page: int, page_size: int
) -> Page[TargetOut]:
    return await paginate(
        session,
        JobRunTarget,
        where=[JobRunTarget.run_id == run_id],
        order_by=[JobRunTarget.position],
        page=page,
        page_size=page_size,
        to_item=target_out,
    )


async def run_detail(
    session: AsyncSession, run: JobRun, *, targets_page: int, targets_page_size: int
) -> RunDetailOut:
    """One run with its per-target rows (paginated) and target counts by status."""
    count_rows = await session.execute(
        select(JobRunTarget.status, func.count())
        .where(JobRunTarget.run_id == run.id)
        .group_by(JobRunTarget.status)
    )
    base: dict[str, Any] = RunOut.of(run).model_dump()
    return RunDetailOut(
        **base,
        attempts=await run_attempts(session, run),
        target_counts={status: count for status, count in count_rows.all()},
        target_rows=await target_page(
            session, run.id, page=targets_page, page_size=targets_page_size
        ),
    )


async def run_attempts(
    session: AsyncSession, run: JobRun, *, with_targets: bool = False
) -> list[AttemptOut]:
    """The run's attempts, oldest first: those kept when they ended in a retry, then the
    latest one from the run row itself (once it started)."""
    rows = (
        await session.scalars(
            select(JobRunAttempt)
            .where(JobRunAttempt.run_id == run.id)
            .order_by(JobRunAttempt.attempt)
        )
    ).all()
    attempts = [
        AttemptOut.model_validate(row).model_copy(update={} if with_targets else {"targets": None})
        for row in rows
    ]
    recorded = rows[-1].attempt if rows else 0
    if run.attempt > recorded and run.started_at is not None:
        attempts.append(
            AttemptOut(
                attempt=run.attempt,
                status=run.status,
                started_at=run.started_at,
                finished_at=run.finished_at,
                outcome=Outcome(run.outcome) if run.outcome else None,
                summary=run.summary,
                error=run.error,
                result=run.result,
            )
        )
    return attempts


async def unfinished_targets(session: AsyncSession, run_id: int) -> list[dict[str, str]]:
    """The targets of a run that did not succeed, as a retry's target list."""
    rows = await session.execute(
        select(JobRunTarget.key, JobRunTarget.name)
        .where(JobRunTarget.run_id == run_id, JobRunTarget.status != TargetStatus.SUCCEEDED.value)
        .order_by(JobRunTarget.position)
    )
    return [{"key": key, "name": name} for key, name in rows.all()]


@dataclass(frozen=True)
class LatestTarget:
    """A target's newest finished result among the latest runs of a job type."""

    key: str
    name: str
    run_id: int
    outcome: str | None
    finished_at: Any
    result: dict[str, Any] | None


async def latest_target_results(
    session: AsyncSession, caller: Principal, job_type: str, *, runs: int = 20
) -> dict[str, LatestTarget]:
    """Per target key, its result in the newest of the last ``runs`` finished runs of
    ``job_type`` that checked it (the NiFi clusters' latest colours, say)."""
    recent = (
        select(JobRun.id)
        .where(
            JobRun.job_type == job_type,
            JobRun.finished_at.is_not(None),
            runs_visible_to(caller),
        )
        .order_by(JobRun.queued_at.desc(), JobRun.id.desc())
        .limit(runs)
        .subquery()
    )
    rows = await session.execute(
        select(
            JobRunTarget.key,
            JobRunTarget.name,
            JobRunTarget.run_id,
            JobRunTarget.outcome,
            JobRunTarget.finished_at,
            JobRunTarget.result,
        )
        .where(JobRunTarget.run_id.in_(select(recent.c.id)), JobRunTarget.finished_at.is_not(None))
        .order_by(JobRunTarget.finished_at.desc())
    )
    latest: dict[str, LatestTarget] = {}
    for key, name, run_id, outcome, finished_at, result in rows:
        latest.setdefault(key, LatestTarget(key, name, run_id, outcome, finished_at, result))
    return latest


@dataclass(frozen=True)
class TargetRecord:
    run_id: int
    status: str
    finished_at: Any
    result: dict[str, Any] | None
    error: str | None


async def target_history(
    session: AsyncSession, caller: Principal, job_type: str, key: str, *, limit: int
) -> list[TargetRecord]:
    """The newest finished results of one target (a device, a cluster) in runs of
    ``job_type`` — a device's backups as changed, unchanged or failed, say."""
    rows = await session.execute(
        select(
            JobRunTarget.run_id,
            JobRunTarget.status,
            JobRunTarget.finished_at,
            JobRunTarget.result,
            JobRunTarget.error,
        )
        .join(JobRun, JobRun.id == JobRunTarget.run_id)
        .where(
            JobRun.job_type == job_type,
            JobRunTarget.key == key,
            JobRunTarget.finished_at.is_not(None),
            runs_visible_to(caller),
        )
        .order_by(JobRunTarget.finished_at.desc())
        .limit(limit)
    )
    return [TargetRecord(*row) for row in rows]

"""Prometheus metrics computed at scrape time from PostgreSQL and Redis.

Many processes run runs, so nothing is counted in memory: each scrape asks the database
(one grouped aggregate over the runs, one over the active runs) and Redis (queue sizes,
the scheduler's last tick, worker heartbeat keys). The run counters cover the runs the
database still holds, so retention deleting old runs shows as a counter reset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from arq.connections import ArqRedis
from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.dialects import postgresql

from service.access.visibility import runs_visible_to
from service.db.engine import SessionFactory
from service.db.models import TERMINAL_STATUSES, JobRun, JobRunAttempt
from service.queue.control import queue_stats
from service.scheduling.claims import last_tick
from service.worker.health import live_workers

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 21600.0)
_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric family: name, type, help text and its samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append((suffix, tuple(labels.items()), value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The text exposition format (version 0.0.4)."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            braces = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{family.name}{suffix}{braces} {_number(value)}")
    return "\n".join(lines) + "\n"


def _duration() -> ColumnElement[float]:
    return cast(func.extract("epoch", JobRun.finished_at - JobRun.started_at), Float)


# width_bucket(-duration, these) counts the bounds at or above the duration (NULL for a run
# without one): the duration is computed once per row, and each row lands in one group.
_NEGATED_BOUNDS = postgresql.array([-bound for bound in reversed(DURATION_BUCKETS)], type_=Float)


async def _run_families(sessions: SessionFactory) -> list[Family]:
    duration = _duration()
    bounds_above = func.width_bucket(-duration, _NEGATED_BOUNDS).label("bounds_above")
    query = select(
        JobRun.job_type,
        JobRun.status,
        JobRun.outcome,
        bounds_above,
        func.count(),
        func.count(JobRun.started_at),
        func.coalesce(func.sum(duration), 0.0),
    ).group_by(JobRun.job_type, JobRun.status, JobRun.outcome, bounds_above)
    async with sessions() as session:
        rows = (await session.execute(query)).all()

    bounds = len(DURATION_BUCKETS)
    started: dict[str, int] = defaultdict(int)
    ended: dict[tuple[str, str, str], int] = defaultdict(int)
    buckets: dict[str, list[int]] = defaultdict(lambda: [0] * bounds)
    timed_count: dict[str, int] = defaultdict(int)
    duration_sum: dict[str, float] = defaultdict(float)
    for job_type, status, outcome, above, count, started_count, total in rows:
        started[job_type] += started_count
        if status in _TERMINAL:
            ended[(job_type, status, outcome or "none")] += count
        if above is None:
            continue
        timed_count[job_type] += count
        duration_sum[job_type] += float(total)
        # A duration within the top ``above`` bounds counts in each of their buckets.
        for index in range(bounds - above, bounds):
            buckets[job_type][index] += count

    finished = Family(
        "opsjobs_runs_finished_total",
        "counter",
        "Runs that ended, by job type, status and outcome (runs the database holds).",
    )
    for (job_type, status, outcome), count in sorted(ended.items()):
        finished.add(count, job_type=job_type, status=status, outcome=outcome)
    started_family = Family(
        "opsjobs_runs_started_total",
        "counter",
        "Runs a worker started, by job type (runs the database holds).",
    )
    for job_type in sorted(started):
        started_family.add(started[job_type], job_type=job_type)
    histogram = Family(
        "opsjobs_run_duration_seconds",
        "histogram",
        "Time from start to end of finished runs, by job type.",
    )
    for job_type in sorted(started):  # every job type seen, with or without durations
        for bound, value in zip(DURATION_BUCKETS, buckets[job_type], strict=True):
            histogram.add(value, "_bucket", job_type=job_type, le=_number(bound))
        histogram.add(timed_count[job_type], "_bucket", job_type=job_type, le="+Inf")
        histogram.add(duration_sum[job_type], "_sum", job_type=job_type)
        histogram.add(timed_count[job_type], "_count", job_type=job_type)
    return [started_family, finished, histogram]


async def _attempt_families(sessions: SessionFactory) -> list[Family]:
    """Attempts started, and attempts that ended in a retry by the failure that caused it."""
    async with sessions() as session:
        started = (
            await session.execute(
                select(JobRun.job_type, func.sum(JobRun.attempt))
                .group_by(JobRun.job_type)
                .order_by(JobRun.job_type)
            )
        ).all()
        retried = (
            await session.execute(
                select(JobRun.job_type, JobRunAttempt.failure, func.count())
                .join(JobRun, JobRun.id == JobRunAttempt.run_id)
                .group_by(JobRun.job_type, JobRunAttempt.failure)
                .order_by(JobRun.job_type, JobRunAttempt.failure)
            )
        ).all()
    attempts = Family(
        "opsjobs_run_attempts_total",
        "counter",
        "Attempts workers started, retries included, by job type (runs the database holds).",
    )
    for job_type, count in started:
        attempts.add(int(count or 0), job_type=job_type)
    retries = Family(
        "opsjobs_run_retries_total",
        "counter",
        "Attempts that ended in a retry of their run, by job type and failure "
        "(failed, lost, timeout).",
    )
    for job_type, failure, count in retried:
        retries.add(count, failure=failure or "unknown", job_type=job_type)
    return [attempts, retries]


async def _queue_families(
    sessions: SessionFactory, redis: ArqRedis, queues: Sequence[str]
) -> list[Family]:
    pending = Family("opsjobs_queue_pending_runs", "gauge", "Pending runs per queue.")
    running = Family("opsjobs_queue_running_runs", "gauge", "Running runs per queue.")
    arq_jobs = Family(
        "opsjobs_queue_arq_jobs", "gauge", "Jobs in the arq queue (waiting or being run)."
    )
    oldest = Family(
        "opsjobs_queue_oldest_pending_age_seconds",
        "gauge",
        "How long the oldest pending run of the queue has waited (0 when none).",
    )
    # Scrapes are anonymous: only queues of global runs are named besides configured ones.
    for stats in await queue_stats(sessions, redis, queues, runs_visible_to(None)):
        pending.add(stats.pending, queue=stats.name)
        running.add(stats.running, queue=stats.name)
        arq_jobs.add(stats.arq_jobs, queue=stats.name)
        oldest.add(stats.oldest_queued_age_seconds or 0.0, queue=stats.name)
    return [pending, running, arq_jobs, oldest]


async def _scheduler_families(redis: ArqRedis) -> list[Family]:
    tick = await last_tick(redis)
    if not tick:
        return []
    lag = Family(
        "opsjobs_scheduler_lag_seconds",
        "gauge",
        "How late the last scheduler tick claimed its most overdue fire.",
    )
    lag.add(float(tick.get("lag", "0")))
    age = Family(
        "opsjobs_scheduler_last_tick_age_seconds",
        "gauge",
        "Seconds since the last scheduler tick.",
    )
    at = datetime.fromisoformat(tick["at"])
    age.add(round(max((datetime.now(UTC) - at).total_seconds(), 0.0), 3))
    return [lag, age]


async def _worker_family(redis: ArqRedis, queues: Sequence[str]) -> Family:
    counts = dict.fromkeys(queues, 0)
    for worker in await live_workers(redis):
        counts[worker.queue] = counts.get(worker.queue, 0) + 1
    family = Family(
        "opsjobs_workers", "gauge", "Worker processes with a live heartbeat, per queue."
    )
    for queue, count in counts.items():
        family.add(count, queue=queue)
    return family


async def collect(sessions: SessionFactory, redis: ArqRedis, queues: Sequence[str]) -> str:
    """Every metric family, rendered."""
    families = await _run_families(sessions)
    families += await _attempt_families(sessions)
    families += await _queue_families(sessions, redis, queues)
    families += await _scheduler_families(redis)
    families.append(await _worker_family(redis, queues))
    return render(families)

"""Scheduler tick cost: 100 due schedules among 1,000 and among 100,000 active ones.

A tick must cost what is due, not what exists: the claim walks the partial index
``ix_job_schedules_due`` and never the whole table.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.harness import BenchStores, report
from service.db.models import JobTemplate
from service.scheduling.claims import tick

DUE = 100
SIZES = (1_000, 100_000)
REPEATS = 7
TARGET_MS = 100.0
TARGET_RATIO = 1.5

# One statement makes every schedule: the first DUE are due a second ago, the others fire
# over the next day (interval schedules, the claim's costliest kind to plan is similar).
_FILL = text(
    """
    INSERT INTO job_schedules (
        job_identifier, template_id, schedule_type, interval_minutes, timezone, parameters,
        misfire_policy, misfire_cap, overlap_policy, is_active, is_global, next_run_at
    )
    SELECT 'bench-' || i, :template_id, 'interval', 1440, 'UTC', '{}'::jsonb,
           'run_once', 10, 'skip', true, true,
           CASE WHEN i <= :due THEN CAST(:now AS timestamptz) - interval '1 second'
                ELSE CAST(:now AS timestamptz) + make_interval(secs => i) END
    FROM generate_series(1, :total) AS i
    """
)
_REARM = text(
    "UPDATE job_schedules SET next_run_at = CAST(:now AS timestamptz) - interval '1 second' "
    "WHERE id <= :due"
)


async def _fill(stores: BenchStores, total: int, now: datetime) -> None:
    async with stores.sessions.begin() as session:
        await session.execute(text("TRUNCATE job_runs, job_schedules RESTART IDENTITY CASCADE"))
        template = JobTemplate(name=f"bench-tick-{total}", job_type="diag.echo")
        session.add(template)
        await session.flush()
        await session.execute(
            _FILL, {"template_id": template.id, "due": DUE, "now": now, "total": total}
        )
    async with stores.sessions() as session:
        conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        await conn.execute(text("VACUUM ANALYZE job_schedules"))


async def tick_ms(stores: BenchStores, total: int) -> float:
    """Median duration of a tick claiming DUE schedules among ``total`` active ones (ms)."""
    now = datetime.now(UTC).replace(microsecond=0)
    await _fill(stores, total, now)
    durations: list[float] = []
    for repeat in range(REPEATS + 1):
        async with stores.sessions.begin() as session:
            await session.execute(text("TRUNCATE job_runs RESTART IDENTITY CASCADE"))
            await session.execute(_REARM, {"now": now, "due": DUE})
        await stores.redis.flushdb()
        result = await tick(stores, now + timedelta(milliseconds=repeat))
        if result.queued != DUE:
            raise RuntimeError(f"tick queued {result.queued} runs, expected {DUE}")
        if repeat:  # the first tick warms connections and statement caches
            durations.append(result.duration * 1000)
    return statistics.median(durations)


async def run(stores: BenchStores) -> bool:
    small, large = [await tick_ms(stores, total) for total in SIZES]
    ratio = large / small
    async with stores.sessions.begin() as session:
        await session.execute(text("TRUNCATE job_runs, job_schedules RESTART IDENTITY CASCADE"))
    await stores.redis.flushdb()
    report(
        f"scheduler tick: {DUE} due schedules claimed, planned, inserted as runs and queued "
        f"(median of {REPEATS})",
        [
            (f"{SIZES[0]:,} active schedules", f"{small:8.1f} ms"),
            (f"{SIZES[1]:,} active schedules", f"{large:8.1f} ms  (target <= {TARGET_MS:.0f} ms)"),
            ("ratio", f"{ratio:8.2f}  (target <= {TARGET_RATIO})"),
        ],
    )
    return large <= TARGET_MS and ratio <= TARGET_RATIO

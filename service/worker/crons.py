"""The arq cron functions of scheduler-queue workers, and when each fires.

arq's unique per-fire job ids keep one execution of each per tick, whatever the number of
workers; the work itself lives with what it maintains (scheduling claims, maintenance,
retention, the device cache, notifications).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from arq.cron import CronJob, cron
from arq.typing import WorkerCoroutine

from service.keyspace import KeySpace
from service.notify.cycle import notification_pass
from service.scheduling.claims import tick
from service.settings import Settings
from service.worker.context import WorkerContext
from service.worker.device_cache import cache_devices_cron, interval_fields
from service.worker.maintenance import reaper_cron, reconciler_cron
from service.worker.outages import Outage, database_outage
from service.worker.retention import retention_cron, retention_minutes


async def scheduler_cron(ctx: WorkerContext) -> int:
    return (await tick(ctx["services"])).queued


async def lost_runs_cron(ctx: WorkerContext) -> int:
    """The reaper, except within ``reaper.lost_after`` of a PostgreSQL outage: the
    heartbeats live workers could not write meanwhile are not signs of lost workers."""
    outage = ctx.get("database_outage")
    lost_after = ctx["services"].settings.reaper.lost_after
    if outage is not None and outage.answered_for() < lost_after:
        return 0
    return await reaper_cron(ctx)


async def notify_cron(ctx: WorkerContext) -> int:
    return (await notification_pass(ctx["services"])).delivered


def cron_seconds(interval: float) -> set[int]:
    """Seconds of the minute at which a cron with this period fires (period divides 60)."""
    step = max(1, min(60, round(interval)))
    while 60 % step:
        step -= 1
    return set(range(0, 60, step))


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The maintenance crons; arq's unique per-fire job ids keep one execution per tick."""
    reaper_at = cron_seconds(settings.reaper.interval)
    # Prefixed names make arq's per-fire job ids (``<name>:<ms>``) the installation's own.
    name = KeySpace(settings.redis.prefix).cron
    jobs = [
        cron(
            _as_cron(scheduler_cron),
            name=name("scheduler_tick"),
            second=cron_seconds(settings.scheduler.tick_seconds),
            timeout=60,
        ),
        cron(_as_cron(lost_runs_cron), name=name("reap_lost_runs"), second=reaper_at, timeout=120),
        cron(
            _as_cron(reconciler_cron),
            name=name("reconcile_pending_runs"),
            second=reaper_at,
            timeout=120,
        ),
        cron(
            _as_cron(notify_cron),
            name=name("notify"),
            second=cron_seconds(settings.notify.interval),
            timeout=120,
        ),
        cron(
            _as_cron(retention_cron),
            name=name("purge_finished_runs"),
            minute=retention_minutes(settings.retention.interval),
            second=0,
            timeout=600,
        ),
    ]
    nautobot = settings.nautobot
    if nautobot.url and nautobot.cache_interval > 0:
        jobs.append(
            cron(
                _as_cron(cache_devices_cron),
                name=name("cache_devices"),
                timeout=60,
                **interval_fields(nautobot.cache_interval),
            )
        )
    return jobs


def _as_cron(
    function: Callable[[WorkerContext], Coroutine[Any, Any, int]],
) -> WorkerCoroutine:
    """The arq coroutine of a cron; a tick that cannot reach PostgreSQL does nothing and
    reports to the worker's outage (one WARNING, then one INFO when it is back)."""

    async def run(ctx: dict[Any, Any], *_: Any, **__: Any) -> int:
        outage: Outage = ctx.setdefault("database_outage", database_outage())
        return await outage.guard(lambda: function(ctx), 0)  # type: ignore[arg-type]

    run.__qualname__ = function.__qualname__
    return run

"""The arq cron that fires ``cache_devices`` runs (``triggered_by=system``).

Workers of the scheduler queue run it at the configured interval; arq's per-fire job ids
keep one execution per tick across workers, and a refresh still pending or running is not
doubled, so a slow Nautobot never piles up refresh runs.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from service.db.models import ACTIVE_STATUSES, JobRun, TriggeredBy
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.worker.context import WorkerContext

logger = logging.getLogger(__name__)

JOB_TYPE = "cache_devices"


def interval_fields(interval: float) -> dict[str, Any]:
    """arq ``cron`` fields firing about every ``interval`` seconds.

    The period is rounded down to a divisor of a minute, an hour or a day (at least 1 s),
    so fires stay evenly spaced across the boundary.
    """
    seconds = max(1, round(interval))
    if seconds < 60:
        return {"second": set(range(0, 60, _divisor(seconds, 60)))}
    minutes = seconds // 60
    if minutes < 60:
        return {"minute": set(range(0, 60, _divisor(minutes, 60))), "second": 0}
    hours = min(24, minutes // 60)
    return {"hour": set(range(0, 24, _divisor(hours, 24))), "minute": 0, "second": 0}


def _divisor(step: int, whole: int) -> int:
    while whole % step:
        step -= 1
    return step


async def cache_devices_cron(ctx: WorkerContext) -> int:
    """Queue one ``cache_devices`` run unless one is already pending or running."""
    services = ctx["services"]
    async with services.sessions() as session:
        active = await session.scalar(
            select(func.count()).where(
                JobRun.job_type == JOB_TYPE,
                JobRun.status.in_([status.value for status in ACTIVE_STATUSES]),
            )
        )
    if active:
        logger.info("device cache refresh still active; not queueing another")
        return 0
    run_id = await lifecycle.enqueue_run(
        services.sessions,
        services.redis,
        RunRequest(
            job_type=JOB_TYPE,
            job_name=JOB_TYPE,
            queue=services.settings.queues.default,
            parameters={},
            triggered_by=TriggeredBy.SYSTEM,
        ),
    )
    logger.info("device cache refresh queued", extra={"run_id": run_id})
    return 1

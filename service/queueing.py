"""arq as transport: one job per run, id ``run:<id>``, the single function ``dispatch_job``.

PostgreSQL is the record of truth; these helpers only move run ids through Redis.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms

logger = logging.getLogger(__name__)

DISPATCH_FUNCTION = "dispatch_job"
# A queued job key outliving a long backlog; the reconciler covers anything older.
JOB_EXPIRY = timedelta(days=7)


def job_id(run_id: int) -> str:
    return f"run:{run_id}"


async def enqueue_dispatch(redis: ArqRedis, run_id: int, queue: str) -> bool:
    """Queue ``dispatch_job(run_id)``; False when a job for this run is already queued."""
    job = await redis.enqueue_job(
        DISPATCH_FUNCTION, run_id, _job_id=job_id(run_id), _queue_name=queue, _expires=JOB_EXPIRY
    )
    if job is None:
        logger.info("run already queued", extra={"run_id": run_id, "queue": queue})
        return False
    return True


async def is_queued(redis: ArqRedis, run_id: int) -> bool:
    """True while Redis still holds the job for this run (queued or running)."""
    return bool(await redis.exists(job_key_prefix + job_id(run_id)))


async def discard_job(redis: ArqRedis, run_id: int, queue: str) -> None:
    """Remove every trace of a run's job so it will not start (or can be queued afresh)."""
    jid = job_id(run_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(queue, jid)
        pipe.delete(
            job_key_prefix + jid,
            in_progress_key_prefix + jid,
            retry_key_prefix + jid,
            result_key_prefix + jid,
        )
        pipe.zrem(abort_jobs_ss, jid)
        await pipe.execute()


async def abort_running_job(redis: ArqRedis, run_id: int) -> None:
    """Ask the worker running this run to cancel its task (arq ``allow_abort_jobs``)."""
    # Job.abort() would then wait for a result, which runs never keep in Redis.
    await redis.zadd(abort_jobs_ss, {job_id(run_id): timestamp_ms()})

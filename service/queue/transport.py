"""arq as transport: one job per run, id ``<prefix>run:<id>``, the single function
``dispatch_job``.

PostgreSQL is the record of truth; these functions only move run ids through Redis. A
queue is named by its configured name (what run rows record); the Redis key of the queue
and the job ids come from the client's key space (:mod:`service.keyspace`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio.client import Pipeline

from service.keyspace import KeySpace, keyspace_of
from service.queue.scripts import Arg, LuaScript

logger = logging.getLogger(__name__)

DISPATCH_FUNCTION = "dispatch_job"
# A queued job key outliving a long backlog; the reconciler covers anything older.
JOB_EXPIRY = timedelta(days=7)
_EXPIRY_MS = int(JOB_EXPIRY.total_seconds() * 1000)


# arq's enqueue_job in one round trip: refused while the job (or its result) exists,
# else the serialized job is stored with its expiry and its id queued at its score.
_ENQUEUE = LuaScript(
    """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
)
# How many jobs one pipeline of enqueue_dispatches carries.
ENQUEUE_BATCH = 500


def _enqueue_call(redis: ArqRedis, run_id: int, queue: str) -> tuple[list[str], list[Arg]]:
    space = keyspace_of(redis)
    jid = space.job_id(run_id)
    now = timestamp_ms()
    job = serialize_job(
        DISPATCH_FUNCTION, (run_id,), {}, None, now, serializer=redis.job_serializer
    )
    keys = [job_key_prefix + jid, result_key_prefix + jid, space.queue(queue)]
    return keys, [_EXPIRY_MS, job, now, jid]


def _queued(run_id: int, queue: str, answer: object) -> bool:
    if answer == 1:
        return True
    logger.info("run already queued", extra={"run_id": run_id, "queue": queue})
    return False


async def enqueue_dispatch(redis: ArqRedis, run_id: int, queue: str) -> bool:
    """Queue ``dispatch_job(run_id)``; False when a job for this run is already queued."""
    keys, args = _enqueue_call(redis, run_id, queue)
    return _queued(run_id, queue, await _ENQUEUE(redis, keys, args))


async def enqueue_deferred_dispatch(
    redis: ArqRedis, run_id: int, queue: str, due: datetime
) -> bool:
    """Queue ``dispatch_job(run_id)`` to start no earlier than ``due`` (arq's
    ``_defer_until``); False when a job for this run is already queued."""
    space = keyspace_of(redis)
    job = await redis.enqueue_job(
        DISPATCH_FUNCTION,
        run_id,
        _job_id=space.job_id(run_id),
        _queue_name=space.queue(queue),
        _defer_until=due,
    )
    return _queued(run_id, queue, 1 if job is not None else 0)


async def enqueue_dispatches(redis: ArqRedis, jobs: Sequence[tuple[int, str]]) -> list[bool]:
    """:func:`enqueue_dispatch` for many ``(run_id, queue)``, a pipeline per batch."""
    queued: list[bool] = []
    if not jobs:
        return queued
    await _ENQUEUE.load(redis)
    for start in range(0, len(jobs), ENQUEUE_BATCH):
        batch = jobs[start : start + ENQUEUE_BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for run_id, queue in batch:
                _ENQUEUE.queue(pipe, *_enqueue_call(redis, run_id, queue))
            answers = await pipe.execute(raise_on_error=False)
        for (run_id, queue), answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                # The script cache was flushed meanwhile (or Redis refused): one by one.
                queued.append(await enqueue_dispatch(redis, run_id, queue))
            else:
                queued.append(_queued(run_id, queue, answer))
    return queued


async def is_queued(redis: ArqRedis, run_id: int) -> bool:
    """True while Redis still holds the job for this run (queued or running)."""
    return bool(await redis.exists(job_key_prefix + keyspace_of(redis).job_id(run_id)))


def _discard(pipe: Pipeline, space: KeySpace, run_id: int, queue: str) -> None:
    jid = space.job_id(run_id)
    pipe.zrem(space.queue(queue), jid)
    pipe.delete(
        job_key_prefix + jid,
        in_progress_key_prefix + jid,
        retry_key_prefix + jid,
        result_key_prefix + jid,
    )
    pipe.zrem(abort_jobs_ss, jid)


async def discard_job(redis: ArqRedis, run_id: int, queue: str) -> None:
    """Remove every trace of a run's job so it will not start (or can be queued afresh)."""
    await discard_jobs(redis, [(run_id, queue)])


async def discard_jobs(redis: ArqRedis, jobs: Sequence[tuple[int, str]]) -> None:
    """:func:`discard_job` for many ``(run_id, queue)`` in one MULTI: one round trip.

    The queued job, its in-progress key (a worker that died leaves one for hours, and arq
    skips a job that has one) and its retry, result and abort entries all go at once.
    """
    if not jobs:
        return
    space = keyspace_of(redis)
    async with redis.pipeline(transaction=True) as pipe:
        for run_id, queue in jobs:
            _discard(pipe, space, run_id, queue)
        await pipe.execute()


async def requeue_jobs(redis: ArqRedis, jobs: Sequence[tuple[int, str]]) -> None:
    """Discard each run's old job and queue a fresh one, all in one round trip."""
    if not jobs:
        return
    await _ENQUEUE.load(redis)
    space = keyspace_of(redis)
    async with redis.pipeline(transaction=True) as pipe:
        for run_id, queue in jobs:
            _discard(pipe, space, run_id, queue)
            _ENQUEUE.queue(pipe, *_enqueue_call(redis, run_id, queue))
        await pipe.execute()


# A wake-up outlives the moment it was sent by this much (ms): a worker that was deciding
# to defer the job as it came still sees it (``defer_job``).
WAKE_TTL_MS = 10_000


# KEYS: queue, wake key. ARGV: job id, now (ms), wake TTL (ms). The job is made due now if
# it is queued (never queued again), and the wake-up is recorded for the worker that may
# be about to defer it.
_WAKE = LuaScript(
    """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('PSETEX', KEYS[2], ARGV[3], '1')
return 1
"""
)
# KEYS: queue, wake key, in-progress key. ARGV: job id, defer (ms), now (ms). How a worker
# gives back a job it defers (arq's DEL in-progress + ZINCRBY), unless the job was woken
# meanwhile: then it is due now. 1 when deferred.
_DEFER = LuaScript(
    """
redis.call('DEL', KEYS[3])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
  return 0
end
redis.call('ZINCRBY', KEYS[1], ARGV[2], ARGV[1])
return 1
"""
)


async def wake_jobs(redis: ArqRedis, jobs: Sequence[tuple[int, str]]) -> None:
    """Make queued jobs due now (runs waiting for a run that just ended), one round trip."""
    if not jobs:
        return
    await _WAKE.load(redis)
    space = keyspace_of(redis)
    now = timestamp_ms()
    async with redis.pipeline(transaction=False) as pipe:
        for run_id, queue in jobs:
            jid = space.job_id(run_id)
            _WAKE.queue(pipe, [space.queue(queue), space.run_wake(jid)], [jid, now, WAKE_TTL_MS])
        await pipe.execute()


async def defer_job(redis: ArqRedis, queue_key: str, job: str, defer_ms: int) -> bool:
    """Give back a job of the queue whose Redis key is ``queue_key`` to run ``defer_ms``
    later, or now if it was woken meanwhile; True when deferred."""
    keys = [queue_key, keyspace_of(redis).run_wake(job), in_progress_key_prefix + job]
    return bool(await _DEFER(redis, keys, [job, defer_ms, timestamp_ms()]))


async def due_run_jobs(redis: ArqRedis, queue: str, limit: int) -> list[int]:
    """Run ids of the first ``limit`` due jobs of ``queue``: the window arq's poll reads."""
    space = keyspace_of(redis)
    jobs = await redis.zrangebyscore(space.queue(queue), "-inf", timestamp_ms(), start=0, num=limit)
    return [run_id for run_id in map(space.run_id_of, jobs) if run_id is not None]


async def abort_running_job(redis: ArqRedis, run_id: int) -> None:
    """Ask the worker running this run to cancel its task (arq ``allow_abort_jobs``)."""
    # Job.abort() would then wait for a result, which runs never keep in Redis.
    await redis.zadd(abort_jobs_ss, {keyspace_of(redis).job_id(run_id): timestamp_ms()})

"""Queueing a run's job in one round trip, alone or in batches, as arq would."""

from __future__ import annotations

import uuid

from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus

from executors.services import Services
from service.queue import transport
from service.queue.scripts import LuaScript


async def test_a_queued_job_is_one_arq_understands(services: Services) -> None:
    queue = services.settings.queues.default
    assert await transport.enqueue_dispatch(services.redis, 7, queue)
    job = Job(
        services.keyspace.job_id(7), services.redis, _queue_name=services.keyspace.queue(queue)
    )
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert info is not None
    assert info.function == transport.DISPATCH_FUNCTION
    assert info.args == (7,)
    ttl_ms = await services.redis.pttl(job_key_prefix + services.keyspace.job_id(7))
    assert 0 < ttl_ms <= transport.JOB_EXPIRY.total_seconds() * 1000


async def test_a_run_is_queued_once_and_not_while_its_result_is_kept(services: Services) -> None:
    queue = services.settings.queues.default
    assert await transport.enqueue_dispatch(services.redis, 8, queue)
    assert not await transport.enqueue_dispatch(services.redis, 8, queue)
    await services.redis.set(result_key_prefix + services.keyspace.job_id(9), b"kept")
    assert not await transport.enqueue_dispatch(services.redis, 9, queue)
    assert await services.redis.zcard(services.keyspace.queue(queue)) == 1


async def test_batches_queue_each_run_once(services: Services) -> None:
    queue = services.settings.queues.default
    assert await transport.enqueue_dispatch(services.redis, 3, queue)
    jobs = [(run_id, queue) for run_id in range(1, transport.ENQUEUE_BATCH + 10)]
    queued = await transport.enqueue_dispatches(services.redis, jobs)
    assert queued == [run_id != 3 for run_id, _ in jobs]
    assert await services.redis.zcard(services.keyspace.queue(queue)) == len(jobs)


async def test_a_script_unknown_to_the_server_is_sent_once(services: Services) -> None:
    # A source no server has seen (unique per test run): the first call falls back to EVAL.
    script = LuaScript(f"-- {uuid.uuid4()}\nreturn tonumber(ARGV[1]) + 1")
    assert not (await services.redis.script_exists(script.sha))[0]
    assert await script(services.redis, [], [41]) == 42
    assert (await services.redis.script_exists(script.sha))[0]
    assert await script(services.redis, [], [1]) == 2

"""Run events published at once by many runs: all stored, in order per run, errors raised."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from executors.services import Services
from service.keyspace import KeyedRedis
from service.runs.reporting import EventPublisher
from tests.conftest import free_port


async def test_concurrent_runs_each_keep_every_event_in_order(services: Services) -> None:
    publisher = EventPublisher(services.redis, services.settings.events)

    async def run(run_id: int) -> None:
        for step in range(5):
            await publisher.publish(run_id, "progress", {"current": step})

    await asyncio.gather(*(run(run_id) for run_id in range(1, 21)))
    for run_id in range(1, 21):
        entries = await services.redis.xrange(services.keyspace.run_events(run_id))
        assert [entry[b"data"] for _, entry in entries] == [
            f'{{"current": {step}}}'.encode() for step in range(5)
        ]
        ttl = await services.redis.ttl(services.keyspace.run_events(run_id))
        assert 0 < ttl <= services.settings.events.stream_ttl


async def test_every_publisher_of_a_failed_batch_sees_the_error(services: Services) -> None:
    unreachable = KeyedRedis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    unreachable.keyspace = services.keyspace
    publisher = EventPublisher(unreachable, services.settings.events)
    try:
        results = await asyncio.gather(
            *(publisher.publish(run_id, "log", {"message": "x"}) for run_id in range(3)),
            return_exceptions=True,
        )
    finally:
        await unreachable.aclose()
    assert len(results) == 3
    assert all(isinstance(result, RedisConnectionError) for result in results)
    with pytest.raises(RedisConnectionError):
        await EventPublisher(unreachable, services.settings.events).publish(9, "log", {})

"""Run events published at once by many runs: all stored, in order per run; buffered while
Redis is away."""

from __future__ import annotations

import asyncio
import json

import pytest

from executors.services import Services
from service.keyspace import KeyedRedis
from service.runs import reporting
from service.runs.reporting import EventPublisher
from tests.conftest import free_port
from tests.faults.conditions import until
from tests.faults.redis_instance import RedisInstance


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


async def test_without_redis_events_are_buffered_then_stored_in_order(
    services: Services,
) -> None:
    """A publish never raises: while Redis is away events wait in the publisher, and when
    Redis is back they are stored in order, followed by the ones published meanwhile."""
    instance = RedisInstance()
    redis = KeyedRedis.from_url(instance.url())
    redis.keyspace = services.keyspace
    publisher = EventPublisher(redis, services.settings.events)
    try:
        async with asyncio.timeout(10):
            for step in range(3):
                await publisher.publish(1, "progress", {"current": step})
            await publisher.publish(1, "state", {"status": "completed"})
        assert publisher.buffered == 4, f"{publisher.buffered} events buffered, 4 expected"
        await asyncio.to_thread(instance.start)
        await publisher.publish(1, "log", {"message": "after"})
        await until(lambda: publisher.buffered == 0, within=20)
        entries = await redis.xrange(services.keyspace.run_events(1))
        assert [entry[b"type"] for _, entry in entries] == [
            b"progress",
            b"progress",
            b"progress",
            b"state",
            b"log",
        ]
        # Redis back and the buffer empty: events go straight to Redis again.
        await publisher.publish(1, "log", {"message": "direct"})
        assert publisher.buffered == 0
        assert await redis.xlen(services.keyspace.run_events(1)) == 6
    finally:
        await publisher.aclose(grace=0)
        await redis.aclose()
        await asyncio.to_thread(instance.close)


async def test_a_full_buffer_drops_the_oldest_progress_never_a_state(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "BUFFER_MAX", 10)
    unreachable = KeyedRedis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    unreachable.keyspace = services.keyspace
    publisher = EventPublisher(unreachable, services.settings.events)
    try:
        await publisher.publish(1, "state", {"status": "running"})
        for step in range(20):
            await publisher.publish(1, "progress", {"current": step})
        await publisher.publish(1, "state", {"status": "completed"})
        kept = [(kind, json.loads(fields["data"])) for _, fields, kind in publisher._buffer]
    finally:
        await publisher.aclose(grace=0)
        await unreachable.aclose()
    assert len(kept) == 10, f"{len(kept)} events kept, the cap is 10"
    assert publisher.dropped == 12, f"{publisher.dropped} events dropped, 12 expected"
    assert kept[0] == ("state", {"status": "running"})
    assert kept[-1] == ("state", {"status": "completed"})
    # The newest progress events are the ones kept.
    assert [data["current"] for kind, data in kept if kind == "progress"] == list(range(12, 20))

"""Following a run's event stream: heartbeats while idle, the end at the final state."""

from __future__ import annotations

import asyncio

from executors.services import Services
from service.runs.events import START, RunEvent, follow_run_events, is_stream_id

RUN_ID = 4242


async def no_final_state() -> RunEvent | None:
    return None


async def test_heartbeats_while_idle_then_events_until_the_final_state(
    services: Services,
) -> None:
    settings = services.settings
    stream = follow_run_events(
        settings.redis,
        RUN_ID,
        after=START,
        final_state=no_final_state,
        known_final=None,
        heartbeat=0.05,
    )
    async with asyncio.timeout(10):
        assert await anext(stream) is None  # nothing happened yet: a heartbeat
        await services.events.publish(RUN_ID, "log", {"message": "hi"})
        await services.events.publish(RUN_ID, "state", {"status": "failed"})
        events = [event async for event in stream if event is not None]
    assert [(event.type, event.data) for event in events] == [
        ("log", {"message": "hi"}),
        ("state", {"status": "failed"}),
    ]
    assert all(event.id is not None and is_stream_id(event.id) for event in events)
    assert events[-1].is_final


async def test_a_final_state_from_the_row_ends_a_silent_stream(services: Services) -> None:
    ended = RunEvent(type="state", data={"status": "cancelled"})

    async def final_state() -> RunEvent | None:
        return ended

    stream = follow_run_events(
        services.settings.redis,
        RUN_ID,
        after=START,
        final_state=final_state,
        known_final=None,
        heartbeat=30,
    )
    async with asyncio.timeout(10):
        events = [event async for event in stream]
    assert events == [ended]


def test_stream_ids() -> None:
    assert is_stream_id("1795882945027-0")
    assert is_stream_id("0-0")
    assert not is_stream_id("1795882945027")
    assert not is_stream_id("x-1")

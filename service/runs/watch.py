"""A run's events as a Server-Sent Events response, for the API and the console alike.

A run that has already ended sends its final state at once (or, with ``Last-Event-ID``,
the events after that id up to the final state) and closes the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from arq.connections import ArqRedis
from sqlalchemy import select
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.access.principals import Principal
from service.access.visibility import may_see_run
from service.db.engine import SessionFactory
from service.db.models import JobRun
from service.runs.events import (
    HEARTBEAT,
    START,
    RunEvent,
    final_state_of,
    follow_run_events,
    last_final_event,
)
from service.settings import Settings

EVENT_STREAM = "text/event-stream"


class EventStreamResponse(StreamingResponse):
    """An SSE response whose event source is closed however the response ends."""

    def __init__(self, events: AsyncGenerator[bytes, None]) -> None:
        # No caching, and no buffering by a reverse proxy: each event is sent as it happens.
        super().__init__(
            events,
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The watcher may have gone away mid-stream: the source's Redis connection
            # is closed all the same.
            with anyio.CancelScope(shield=True):
                await self._events.aclose()


async def _final_state(sessions: SessionFactory, run_id: int) -> RunEvent | None:
    async with sessions() as session:
        run = await session.get(JobRun, run_id)
    if run is None:  # deleted while watched: nothing more will happen to it
        return RunEvent(type="state", data={"status": "deleted"})
    return final_state_of(run)


async def _once(event: RunEvent) -> AsyncGenerator[bytes, None]:
    yield event.encode()


async def _still_visible(sessions: SessionFactory, run_id: int, caller: Principal) -> bool:
    async with sessions() as session:
        private_to = await session.scalar(select(JobRun.private_to).where(JobRun.id == run_id))
    return may_see_run(caller, private_to)


async def run_event_response(
    settings: Settings,
    sessions: SessionFactory,
    redis: ArqRedis,
    run: JobRun,
    *,
    caller: Principal,
    last_event_id: str | None,
) -> EventStreamResponse:
    """Follow ``run`` (which ``caller`` may see): its events as they happen, resumable
    after ``last_event_id``."""
    run_id = run.id
    # A global run can turn private when a worker starts it (a resource it names became
    # private since it was queued); the worker marks it before it publishes anything but its
    # state, so a watcher's right is asked again at each state and at the first other event.
    watched_work = caller.is_admin or run.private_to is not None
    known_final = final_state_of(run)
    if known_final is not None and last_event_id is None:
        final = await last_final_event(redis, run_id) or known_final
        return EventStreamResponse(_once(final))

    async def events() -> AsyncGenerator[bytes, None]:
        nonlocal watched_work
        stream = follow_run_events(
            settings.redis,
            run_id,
            after=last_event_id or START,
            final_state=lambda: _final_state(sessions, run_id),
            known_final=known_final,
            heartbeat=settings.api.events_heartbeat,
        )
        async with aclosing(stream):
            async for event in stream:
                if event is not None and (event.type == "state" or not watched_work):
                    if not await _still_visible(sessions, run_id, caller):
                        return
                    watched_work = watched_work or event.type != "state"
                yield HEARTBEAT if event is None else event.encode()

    return EventStreamResponse(events())

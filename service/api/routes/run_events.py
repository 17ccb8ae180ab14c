"""``GET /api/job-runs/{id}/events``: a run's live events as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from service.api.auth import RunsReader
from service.api.deps import RedisDep, SessionsDep, SettingsDep
from service.runs.events import STREAM_ID_PATTERN
from service.runs.queries import get_run
from service.runs.watch import EVENT_STREAM, run_event_response

router = APIRouter(prefix="/api/job-runs", tags=["job-runs"])

_SSE_DOC = (
    "Server-Sent Events: `id` is the Redis stream id, `event` one of progress, log, "
    "target_started, target_finished, state; `data` is JSON. Ends after the terminal state."
)


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"description": _SSE_DOC, "content": {EVENT_STREAM: {}}}},
)
async def run_events(
    run_id: int,
    caller: RunsReader,
    settings: SettingsDep,
    sessions: SessionsDep,
    redis: RedisDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=STREAM_ID_PATTERN,
            description="Resume after this event id (`0-0` replays the stream from its start)",
        ),
    ] = None,
) -> StreamingResponse:
    """Follow a run: its events as they happen, resumable with ``Last-Event-ID``.

    A run that has already ended sends its final state at once (or, with ``Last-Event-ID``,
    the events after that id up to the final state) and closes the stream.
    """
    async with sessions() as session:
        run = await get_run(session, caller, run_id)
    return await run_event_response(
        settings, sessions, redis, run, caller=caller, last_event_id=last_event_id
    )

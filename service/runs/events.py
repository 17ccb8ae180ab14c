"""Following a run's event stream (``<prefix>run-events:<id>``) for live watchers.

Events are read with ``XREAD BLOCK`` on a connection of the watcher's own, so a watcher
waiting for the next event never holds a connection of the shared pool. A watcher resumes
after any stream id it has seen; the stream ends with the run's terminal state event. A run
can end without one (cancelled while pending, failed by the reaper): the run row is then
asked while the stream is idle, and its final state is sent in place of the missing event.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
from redis.asyncio import Redis

from service.db.models import TERMINAL_STATUSES, JobRun
from service.keyspace import KeySpace, keyspace_of
from service.settings import RedisSettings

logger = logging.getLogger(__name__)

# A Redis stream id, ``<milliseconds>-<sequence>``; "0-0" means "from the start".
STREAM_ID_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"
_STREAM_ID = re.compile(STREAM_ID_PATTERN)
START = "0-0"
READ_BATCH = 200
# How often an idle watcher asks the run row whether the run ended without a final event.
STATUS_CHECK_INTERVAL = 2.0
# Once the row is final, how long the worker's own final event is waited for (it is
# published right after the row is written).
FINAL_EVENT_GRACE_MS = 250
_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


@dataclass(frozen=True)
class RunEvent:
    """One event: ``id`` is its stream id (None for a final state taken from the run row)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def is_final(self) -> bool:
        return self.type == "state" and self.data.get("status") in _TERMINAL

    def encode(self) -> bytes:
        """The event in Server-Sent Events framing (JSON data on one line)."""
        lines = [] if self.id is None else [f"id: {self.id}"]
        lines += [f"event: {self.type}", f"data: {json.dumps(self.data, default=str)}"]
        return ("\n".join(lines) + "\n\n").encode()


HEARTBEAT = b": keep-alive\n\n"


def is_stream_id(value: str) -> bool:
    return _STREAM_ID.match(value) is not None


def final_state_of(run: JobRun) -> RunEvent | None:
    """The terminal state event for a finished run row; None while it is active."""
    if run.status not in _TERMINAL:
        return None
    return RunEvent(
        type="state",
        data={"status": run.status, "outcome": run.outcome, "summary": run.summary},
    )


def _decode(entry_id: str, fields: dict[str, str]) -> RunEvent:
    try:
        data = json.loads(fields.get("data", "{}"))
    except json.JSONDecodeError:
        data = {}
    return RunEvent(
        type=fields.get("type", "message"),
        data=data if isinstance(data, dict) else {"value": data},
        id=entry_id,
    )


async def last_final_event(redis: Redis, run_id: int, *, look_back: int = 20) -> RunEvent | None:
    """The run's terminal state event if it is among the newest entries of its stream."""
    entries = await cast(
        Awaitable[list[tuple[bytes | str, dict[Any, Any]]]],
        redis.xrevrange(keyspace_of(redis).run_events(run_id), count=look_back),
    )
    for raw_id, raw_fields in entries:
        fields = {_text(key): _text(value) for key, value in raw_fields.items()}
        event = _decode(_text(raw_id), fields)
        if event.is_final:
            return event
    return None


async def logged_lines(redis: Redis, run_id: int, *, limit: int = 500) -> list[RunEvent]:
    """The log events among the first ``limit`` entries of the run's stream."""
    entries = await cast(
        Awaitable[list[tuple[bytes | str, dict[Any, Any]]]],
        redis.xrange(keyspace_of(redis).run_events(run_id), count=limit),
    )
    events = (
        _decode(_text(raw_id), {_text(key): _text(value) for key, value in raw_fields.items()})
        for raw_id, raw_fields in entries
    )
    return [event for event in events if event.type == "log"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def follow_run_events(
    redis: RedisSettings,
    run_id: int,
    *,
    after: str,
    final_state: Callable[[], Awaitable[RunEvent | None]],
    known_final: RunEvent | None,
    heartbeat: float,
) -> AsyncGenerator[RunEvent | None, None]:
    """Events of the run after stream id ``after``, until its terminal state.

    Yields None when a heartbeat is due. ``final_state`` reads the run row; ``known_final``
    is its final state when the run had already ended before following began.
    """
    key = KeySpace(redis.prefix).run_events(run_id)
    connection = Redis.from_url(redis.url, decode_responses=True, single_connection_client=True)
    cursor = after
    final = known_final
    last_write = time.monotonic()
    # At least 1 ms: BLOCK 0 would wait forever.
    wait_ms = max(1, int(min(STATUS_CHECK_INTERVAL, heartbeat) * 1000))
    try:
        while True:
            reply = await cast(
                Awaitable[list[tuple[str, list[tuple[str, dict[str, str]]]]] | None],
                connection.xread(
                    {key: cursor},
                    count=READ_BATCH,
                    block=FINAL_EVENT_GRACE_MS if final is not None else wait_ms,
                ),
            )
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                cursor = entry_id
                event = _decode(entry_id, fields)
                yield event
                if event.is_final:
                    return
            if entries:
                last_write = time.monotonic()
                continue
            if final is not None:
                yield final
                return
            if time.monotonic() - last_write >= heartbeat:
                yield None
                last_write = time.monotonic()
            final = await final_state()
    finally:
        # A watcher that went away cancels this generator; the close must still happen.
        with anyio.CancelScope(shield=True):
            await connection.aclose()

"""Progress, per-target results and log lines of a running run.

Every event goes to a Redis stream per run (``<prefix>run-events:<id>``) that live
watchers read and resume by id; progress also lands on the run row (throttled, plus a
final flush) and target results on their rows, so PostgreSQL keeps what matters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from sqlalchemy import Executable, func, update

from service.db.engine import SessionFactory, retry_lost, single_statement
from service.db.models import JobRun, JobRunTarget, TargetStatus
from service.keyspace import keyspace_of
from service.queue.outage import BACKOFF_FIRST_S, BACKOFF_MAX_S, REDIS_UNAVAILABLE, RedisOutage
from service.settings import EventSettings

if TYPE_CHECKING:
    from service.runs.retries import RetryScheduled

logger = logging.getLogger(__name__)

MAX_LOG_LINE = 4000


@dataclass(frozen=True)
class Progress:
    current: int
    total: int | None
    message: str | None

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return round(min(100.0, 100.0 * self.current / self.total), 1)


# Events kept in a worker while Redis is away; beyond it, the oldest progress and log
# events are dropped first (a run's state events never are).
BUFFER_MAX = 20_000
# Events sent per pipeline when the buffer is published after an outage.
BUFFER_SEND_BATCH = 500
_KEPT_KINDS = frozenset({"state"})

_Event = tuple[str, dict[str, str], str]  # stream key, fields, event type


class EventPublisher:
    """Appends run events to their streams, one pipeline for every event published in the
    same turn of the event loop.

    A busy worker has many runs reporting at once; a Redis round trip per event would make
    the socket writes, not the runs, its bottleneck. Each ``publish`` returns once its
    event is in Redis, so a run's events stay in order.

    Events are best effort; the run row in PostgreSQL is the record. ``publish`` never
    raises: while Redis is away events are buffered (at most ``BUFFER_MAX``; the oldest
    progress and log events are dropped first, state events never) and ``publish`` returns
    at once; a background task sends the buffer, in order, when Redis is back. Until the
    buffer is empty every new event joins it, so no run's events overtake each other.
    """

    def __init__(
        self, redis: Redis, settings: EventSettings, *, outage: RedisOutage | None = None
    ) -> None:
        self._redis = redis
        self._space = keyspace_of(redis)
        self._settings = settings
        self._outage = outage
        self._pending: list[tuple[_Event, asyncio.Future[None]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._buffer: collections.deque[_Event] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def buffered(self) -> int:
        """Events waiting for Redis to come back."""
        return len(self._buffer)

    async def publish(self, run_id: int, kind: str, data: dict[str, Any]) -> None:
        fields = {"type": kind, "data": json.dumps(data, default=str)}
        event = (self._space.run_events(run_id), fields, kind)
        if self._buffer:
            self._keep([event])
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((event, done))
        if len(self._pending) == 1:
            # Runs after every callback already due in this turn: their events join.
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _write(self, events: Sequence[_Event]) -> None:
        settings = self._settings
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, fields, _ in events:
                pipe.xadd(key, fields, maxlen=settings.stream_maxlen, approximate=True)  # type: ignore[arg-type]
                pipe.expire(key, int(settings.stream_ttl))
            await pipe.execute()

    async def _send(self, batch: list[tuple[_Event, asyncio.Future[None]]]) -> None:
        try:
            await self._write([event for event, _ in batch])
        except asyncio.CancelledError:
            for _, done in batch:
                done.cancel()
            raise
        except REDIS_UNAVAILABLE as exc:
            self._redis_away(exc)
            self._keep([event for event, _ in batch])
        except Exception as exc:
            # Not an outage (a refused command): the events are lost, the runs go on.
            logger.warning("run events not stored: %s: %s", type(exc).__name__, exc)
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    def _redis_away(self, exc: BaseException) -> None:
        if self._outage is not None:
            self._outage.failed(exc)
        elif not self._buffer:
            logger.warning("Redis unreachable (%s); run events are buffered", exc)

    def _keep(self, events: Sequence[_Event]) -> None:
        """Buffer events until Redis is back, dropping the oldest droppable beyond the cap."""
        self._buffer.extend(events)
        while len(self._buffer) > BUFFER_MAX and self._drop_oldest():
            pass
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._drain())

    def _drop_oldest(self) -> bool:
        for index, (_, _, kind) in enumerate(self._buffer):
            if kind not in _KEPT_KINDS:
                del self._buffer[index]
                self.dropped += 1
                return True
        return False

    async def _drain(self) -> None:
        """Send the buffer, oldest first, backing off while Redis stays away."""
        delay = BACKOFF_FIRST_S
        while self._buffer:
            chunk = list(itertools.islice(self._buffer, BUFFER_SEND_BATCH))
            try:
                await self._write(chunk)
            except REDIS_UNAVAILABLE as exc:
                self._redis_away(exc)
                await asyncio.sleep(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)
                continue
            except Exception as exc:
                logger.warning("buffered run events not stored: %s: %s", type(exc).__name__, exc)
            # Only this task removes from the left; new events were appended on the right.
            for _ in chunk:
                self._buffer.popleft()
            delay = BACKOFF_FIRST_S
        if self.dropped:
            logger.info(
                "run events buffered during a Redis outage are stored; %s progress "
                "or log events were dropped",
                self.dropped,
            )
            self.dropped = 0

    async def aclose(self, grace: float = 2.0) -> None:
        """Try to send what is buffered (for at most ``grace`` s), then stop."""
        flusher = self._flusher
        if flusher is None or flusher.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(flusher), grace)
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher


class RunReporter:
    """The reporter an executor sees through ``JobContext.reporter``."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        events: EventPublisher,
        run_id: int,
        attempt: int,
        min_db_interval: float,
    ) -> None:
        self._sessions = sessions
        self._events = events
        self.run_id = run_id
        self.attempt = attempt
        self._min_db_interval = min_db_interval
        self._last_db_write = 0.0
        self.last_progress: Progress | None = None

    async def _publish(self, kind: str, data: dict[str, Any]) -> None:
        await self._events.publish(self.run_id, kind, data)

    async def progress(
        self, current: int, total: int | None = None, message: str | None = None
    ) -> None:
        """Report progress; watchers see every call, the run row at most every interval."""
        progress = Progress(current=current, total=total, message=message)
        self.last_progress = progress
        await self._publish(
            "progress",
            {"current": current, "total": total, "percent": progress.percent, "message": message},
        )
        now = time.monotonic()
        if now - self._last_db_write >= self._min_db_interval:
            self._last_db_write = now
            await self.flush_progress()

    async def flush_progress(self) -> None:
        progress = self.last_progress
        if progress is None:
            return
        statement = (
            update(JobRun)
            .where(JobRun.id == self.run_id, JobRun.attempt == self.attempt)
            .values(
                progress_current=progress.current,
                progress_total=progress.total,
                progress_message=progress.message,
            )
        )
        await self._write("progress write", statement)

    async def _write(self, what: str, statement: Executable) -> None:
        """One idempotent statement, repeated after a lost database connection (bounded:
        then the run fails with an error naming the database)."""

        async def execute() -> None:
            async with single_statement(self._sessions) as conn:
                await conn.execute(statement)

        await retry_lost(f"{what} of run {self.run_id}", execute)

    async def log(self, message: str, *, level: str = "info", target: str | None = None) -> None:
        """A log line for watchers of this run."""
        await self._publish(
            "log", {"level": level, "message": message[:MAX_LOG_LINE], "target": target}
        )

    async def target_started(self, key: str) -> None:
        await self._write(
            "target write",
            update(JobRunTarget)
            .where(JobRunTarget.run_id == self.run_id, JobRunTarget.key == key)
            .values(status=TargetStatus.RUNNING.value, started_at=func.now()),
        )
        await self._publish("target_started", {"key": key})

    async def target_result(self, key: str, result: dict[str, Any]) -> None:
        """Keep what a still-running target found so far (no event: it has not finished)."""
        async with single_statement(self._sessions) as conn:
            await conn.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == self.run_id, JobRunTarget.key == key)
                .values(result=result)
            )

    async def target_finished(
        self,
        key: str,
        *,
        status: TargetStatus,
        outcome: str | None,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        await self._write(
            "target write",
            update(JobRunTarget)
            .where(JobRunTarget.run_id == self.run_id, JobRunTarget.key == key)
            .values(
                status=status.value,
                outcome=outcome,
                result=result,
                error=error,
                finished_at=func.now(),
            ),
        )
        await self._publish(
            "target_finished",
            {"key": key, "status": status.value, "outcome": outcome, "error": error},
        )

    async def retry_scheduled(self, retry: RetryScheduled, *, error: str | None) -> None:
        """Announce that this attempt failed and when the next one is due."""
        await self._publish(
            "retry_scheduled",
            {
                "status": "pending",
                "attempt": retry.attempt,
                "max_attempts": retry.max_attempts,
                "failure": retry.failure.value,
                "error": error,
                "retry_at": retry.retry_at.isoformat(),
                "delay_seconds": retry.delay,
            },
        )

    async def state(self, status: str, **data: Any) -> None:
        """Announce a run state change (running, and the terminal state)."""
        await self._publish("state", {"status": status, **data})

"""Progress, per-target results and log lines of a running run.

Every event goes to a Redis stream per run (``opsjobs:run-events:<id>``) that live
watchers read and resume by id; progress also lands on the run row (throttled, plus a
final flush) and target results on their rows, so PostgreSQL keeps what matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, update

from service.db.engine import SessionFactory, single_statement
from service.db.models import JobRun, JobRunTarget, TargetStatus
from service.settings import EventSettings

logger = logging.getLogger(__name__)

MAX_LOG_LINE = 4000


def event_stream_key(run_id: int) -> str:
    return f"opsjobs:run-events:{run_id}"


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


_Pending = tuple[str, dict[str, str], "asyncio.Future[None] | None"]


class EventPublisher:
    """Appends run events to their streams: one pipeline at a time carries every event
    published while the one before it was on its way (group commit).

    A busy worker has many runs reporting at once; a Redis round trip per event would make
    the socket writes, not the runs, its bottleneck. Events leave in the order they were
    published, so a run's events stay in order. ``publish`` returns once its event is
    stored (or raises why not); ``announce`` does not wait, for an event the run need not
    hold up for — its failure is logged, and a later ``publish`` of the run still waits
    for everything before it.
    """

    def __init__(self, redis: Redis, settings: EventSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._pending: list[_Pending] = []
        self._sender: asyncio.Task[None] | None = None

    async def publish(self, run_id: int, kind: str, data: dict[str, Any]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._add(run_id, kind, data, done)
        await done

    def announce(self, run_id: int, kind: str, data: dict[str, Any]) -> None:
        self._add(run_id, kind, data, None)

    async def drain(self) -> None:
        """Wait until every event handed over so far has been sent (worker shutdown)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    def _add(
        self, run_id: int, kind: str, data: dict[str, Any], done: asyncio.Future[None] | None
    ) -> None:
        fields = {"type": kind, "data": json.dumps(data, default=str)}
        self._pending.append((event_stream_key(run_id), fields, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_pending())

    async def _send_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._send(batch)

    async def _send(self, batch: list[_Pending]) -> None:
        settings = self._settings
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, fields, _ in batch:
                    pipe.xadd(key, fields, maxlen=settings.stream_maxlen, approximate=True)  # type: ignore[arg-type]
                    pipe.expire(key, int(settings.stream_ttl))
                await pipe.execute()
        except asyncio.CancelledError:
            for _, _, done in batch:
                if done is not None:
                    done.cancel()
            raise
        except Exception as exc:
            waiting = [done for _, _, done in batch if done is not None and not done.done()]
            for done in waiting:
                done.set_exception(exc)
            if len(waiting) < len(batch):
                logger.warning("run events not stored: %s", exc)
        else:
            for _, _, done in batch:
                if done is not None and not done.done():
                    done.set_result(None)


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
        async with single_statement(self._sessions) as conn:
            await conn.execute(
                update(JobRun)
                .where(JobRun.id == self.run_id, JobRun.attempt == self.attempt)
                .values(
                    progress_current=progress.current,
                    progress_total=progress.total,
                    progress_message=progress.message,
                )
            )

    async def log(self, message: str, *, level: str = "info", target: str | None = None) -> None:
        """A log line for watchers of this run."""
        await self._publish(
            "log", {"level": level, "message": message[:MAX_LOG_LINE], "target": target}
        )

    async def target_started(self, key: str) -> None:
        async with single_statement(self._sessions) as conn:
            await conn.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == self.run_id, JobRunTarget.key == key)
                .values(status=TargetStatus.RUNNING.value, started_at=func.now())
            )
        await self._publish("target_started", {"key": key})

    async def target_finished(
        self,
        key: str,
        *,
        status: TargetStatus,
        outcome: str | None,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        async with single_statement(self._sessions) as conn:
            await conn.execute(
                update(JobRunTarget)
                .where(JobRunTarget.run_id == self.run_id, JobRunTarget.key == key)
                .values(
                    status=status.value,
                    outcome=outcome,
                    result=result,
                    error=error,
                    finished_at=func.now(),
                )
            )
        await self._publish(
            "target_finished",
            {"key": key, "status": status.value, "outcome": outcome, "error": error},
        )

    async def state(self, status: str, **data: Any) -> None:
        """Publish a run state change (the terminal state) and wait until it is stored."""
        await self._publish("state", {"status": status, **data})

    def announce_state(self, status: str, **data: Any) -> None:
        """Hand a state change (running) to the publisher without waiting for Redis."""
        self._events.announce(self.run_id, "state", {"status": status, **data})

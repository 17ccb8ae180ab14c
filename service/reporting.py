"""Progress, per-target results and log lines of a running run.

Every event goes to a Redis stream per run (``opsjobs:run-events:<id>``) that live
watchers read and resume by id; progress also lands on the run row (throttled, plus a
final flush) and target results on their rows, so PostgreSQL keeps what matters.
"""

from __future__ import annotations

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


async def publish_event(
    redis: Redis, settings: EventSettings, run_id: int, kind: str, data: dict[str, Any]
) -> None:
    """Append one event to the run's stream (bounded length, expires after the run)."""
    key = event_stream_key(run_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xadd(
            key,
            {"type": kind, "data": json.dumps(data, default=str)},
            maxlen=settings.stream_maxlen,
            approximate=True,
        )
        pipe.expire(key, int(settings.stream_ttl))
        await pipe.execute()


class RunReporter:
    """The reporter an executor sees through ``JobContext.reporter``."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        redis: Redis,
        events: EventSettings,
        run_id: int,
        attempt: int,
        min_db_interval: float,
    ) -> None:
        self._sessions = sessions
        self._redis = redis
        self._events = events
        self.run_id = run_id
        self.attempt = attempt
        self._min_db_interval = min_db_interval
        self._last_db_write = 0.0
        self.last_progress: Progress | None = None

    async def _publish(self, kind: str, data: dict[str, Any]) -> None:
        await publish_event(self._redis, self._events, self.run_id, kind, data)

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
        """Announce a run state change (running, and the terminal state)."""
        await self._publish("state", {"status": status, **data})

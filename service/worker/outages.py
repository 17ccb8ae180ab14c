"""Store outages as an operator reads them: one WARNING when PostgreSQL stops answering,
one INFO when it answers again, nothing per tick in between (no tracebacks).

Each worker keeps one :class:`Outage` for PostgreSQL in its context; the crons, the run
dispatch and the worker heartbeat report their lost connections to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.db.engine import is_lost_connection

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Outage:
    def __init__(self, store: str) -> None:
        self.store = store
        self.since: float | None = None
        self.failures = 0
        # When the last outage ended (monotonic seconds), None before any.
        self.ended_at: float | None = None

    def answered_for(self) -> float:
        """Seconds the store has answered since the last outage (infinite without one; 0
        during one)."""
        if self.since is not None:
            return 0.0
        if self.ended_at is None:
            return float("inf")
        return time.monotonic() - self.ended_at

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "%s unavailable (%s); retrying quietly until it answers",
                self.store,
                type(error).__name__,
                extra={"store": self.store},
            )

    def recovered(self) -> None:
        if self.since is None:
            return
        lasted = time.monotonic() - self.since
        logger.info(
            "%s available again after %.1f s (%s failed attempts)",
            self.store,
            lasted,
            self.failures,
            extra={"store": self.store, "outage_seconds": round(lasted, 1)},
        )
        self.since = None
        self.failures = 0
        self.ended_at = time.monotonic()

    async def guard(self, operation: Callable[[], Awaitable[T]], otherwise: T) -> T:
        """``operation``'s result; ``otherwise`` when it lost its database connection."""
        try:
            result = await operation()
        except Exception as error:
            if not is_lost_connection(error):
                raise
            self.failed(error)
            return otherwise
        self.recovered()
        return result


def database_outage() -> Outage:
    return Outage("PostgreSQL")

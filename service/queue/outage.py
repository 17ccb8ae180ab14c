"""Telling a Redis outage apart from a fault, and saying so once.

A worker meets an outage in several places at once (its poll loop, its heartbeat, event
publishing); each reports to the process's one :class:`RedisOutage`, which logs one
WARNING when the outage starts and one INFO when the poll loop finds Redis again — no
traceback, however many calls failed meanwhile.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# What Redis being away (stopped, restarting, loading its data, unreachable) raises;
# redis-py wraps socket errors in its own, the built-in ones are for any it lets through.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
)
# Seconds between two tries while Redis is away: doubling from the first, at most the last.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0


class RedisOutage:
    """Whether this process currently finds Redis away, and since when."""

    def __init__(self, who: str) -> None:
        self._who = who
        self._since: float | None = None
        self._delay = BACKOFF_FIRST_S
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """A call found Redis away: the first one of an outage logs it."""
        if self._since is not None:
            return
        self._since = time.monotonic()
        self._delay = BACKOFF_FIRST_S
        self.outages += 1
        logger.warning(
            "Redis unreachable (%s: %s); %s waits and retries",
            type(exc).__name__,
            exc,
            self._who,
        )

    def recovered(self) -> None:
        """A call found Redis again: the end of an outage is logged once."""
        if self._since is None:
            return
        lasted = time.monotonic() - self._since
        self._since = None
        logger.info("Redis reachable again after %.1f s; %s resumes", lasted, self._who)

    def next_delay(self) -> float:
        """How long to wait before the next try (growing while the outage lasts)."""
        delay = self._delay
        self._delay = min(BACKOFF_MAX_S, self._delay * 2)
        return delay

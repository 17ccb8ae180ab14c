"""One writer per repository: an asyncio lock within the process, a Redis lock across.

The asyncio lock queues writers of one process fairly without polling Redis; the Redis
lock keeps processes on other hosts out. The Redis lock expires on its own if its holder
dies, and is extended while held, so a long push is never overtaken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from service.errors import Conflict
from service.keyspace import KeySpace, keyspace_of

logger = logging.getLogger(__name__)


class RepositoryBusy(Conflict):
    """Another writer held the repository for longer than we were willing to wait."""

    code = "repository_busy"


class RepositoryLocks:
    """Per-repository locks; make one per process and share it."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str | None = None,
        expire: float = 120.0,
        wait: float = 600.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._expire = expire
        self._wait = wait
        self._local: dict[str, asyncio.Lock] = {}

    def redis_key(self, repository: str) -> str:
        """The Redis key of ``repository``'s lock: the client's key space names it unless a
        ``prefix`` was given."""
        if self._prefix is not None:
            return KeySpace(self._prefix).git_lock(repository)
        if self._redis is None:
            raise TypeError("a lock without Redis has no key")
        return keyspace_of(self._redis).git_lock(repository)

    @asynccontextmanager
    async def hold(self, repository: str) -> AsyncIterator[None]:
        """Hold ``repository`` exclusively; raises :class:`RepositoryBusy` after ``wait``."""
        local = self._local.setdefault(repository, asyncio.Lock())
        try:
            async with asyncio.timeout(self._wait):
                await local.acquire()
        except TimeoutError:
            raise RepositoryBusy(f"repository {repository} is busy in this process") from None
        try:
            if self._redis is None:
                yield
                return
            lock = self._redis.lock(
                self.redis_key(repository),
                timeout=self._expire,
                blocking_timeout=self._wait,
                thread_local=False,
            )
            if not await lock.acquire():
                raise RepositoryBusy(f"repository {repository} is busy in another process")
            keeper = asyncio.create_task(self._keep(lock))
            try:
                yield
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                try:
                    await lock.release()
                except LockError:
                    logger.warning("lock of repository %s had expired", repository)
        finally:
            local.release()

    async def _keep(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._expire / 3)
            await lock.reacquire()

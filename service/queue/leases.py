"""Concurrency slots shared by every worker process and host: leases in Redis.

A limited thing (a device, a site, a NiFi cluster, a template) is a sorted set
``<prefix>lease:<scope>`` whose members are holders and whose scores are their expiry
(Redis server time, so hosts' clocks never matter). Taking slots of several scopes is one
script: expired holders are dropped, and the holder is added to every set only if each
has room. A holder renews its expiry every third of the lease while it works; a worker
that dies stops renewing, and its slots free within ``leases.ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from service.keyspace import keyspace_of
from service.queue.outage import REDIS_UNAVAILABLE
from service.queue.scripts import LuaScript

logger = logging.getLogger(__name__)

# KEYS: the slot sets. ARGV: holder, lease ms, then one limit per key. 1 when taken.
_TAKE = LuaScript(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, ARGV[1])
     and redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
"""
)
# KEYS: the slot sets. ARGV: holder, lease ms. Returns how many slots were still held.
_RENEW = LuaScript(
    """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local held = 0
for _, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', expiry, ARGV[1]) == 1 then
    held = held + 1
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return held
"""
)
_GIVE_BACK = LuaScript(
    """
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 1
"""
)


_COUNT = LuaScript(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""
)


class SlotsBusy(Exception):
    """Every slot of a scope is held (raised instead of waiting)."""


@dataclass(frozen=True)
class Slot:
    """One slot of ``scope`` (e.g. ``device:42``), of which at most ``limit`` are held."""

    scope: str
    limit: int


class Leases:
    """Takes and holds slots; made once per process on its Redis pool."""

    def __init__(self, redis: Redis, *, ttl: float, poll: float) -> None:
        self._redis = redis
        self._space = keyspace_of(redis)
        self._ttl_ms = max(1, int(ttl * 1000))
        self._poll = poll

    async def try_take(self, slots: Sequence[Slot], holder: str) -> bool:
        keys = [self._space.lease(slot.scope) for slot in slots]
        args: list[str | int] = [holder, self._ttl_ms, *(slot.limit for slot in slots)]
        return bool(await _TAKE(self._redis, keys, args))

    @contextlib.asynccontextmanager
    async def hold(self, slots: Sequence[Slot], *, wait: bool = True) -> AsyncIterator[None]:
        """Wait until every slot is free, hold them for the block, then give them back;
        ``wait=False`` raises :class:`SlotsBusy` at once instead of waiting."""
        holder = uuid.uuid4().hex
        while not await self._try_take_unless_away(slots, holder):
            if not wait:
                raise SlotsBusy(", ".join(slot.scope for slot in slots))
            await asyncio.sleep(self._poll)
        keys = [self._space.lease(slot.scope) for slot in slots]
        renewal = asyncio.create_task(self._renew(keys, holder))
        try:
            yield
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
            # Without Redis the slots free themselves when the lease expires.
            with contextlib.suppress(*REDIS_UNAVAILABLE):
                await _GIVE_BACK(self._redis, keys, [holder])

    async def _try_take_unless_away(self, slots: Sequence[Slot], holder: str) -> bool:
        """:meth:`try_take`, where Redis being away counts as every slot busy (a waiter
        waits it out, and ``wait=False`` gets :class:`SlotsBusy`)."""
        try:
            return await self.try_take(slots, holder)
        except REDIS_UNAVAILABLE:
            return False

    async def _renew(self, keys: list[str], holder: str) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                held = await _RENEW(self._redis, keys, [holder, self._ttl_ms])
            except REDIS_UNAVAILABLE:
                # The work goes on; the next renewal (or the warning below) tells the rest.
                continue
            if held != len(keys):
                # Redis lost the lease (a restart, or this process stalled past the lease):
                # the work goes on, but the limit may be exceeded meanwhile.
                lost = len(keys) - int(str(held))
                logger.warning("lost %s of %s concurrency slots", lost, len(keys))

    async def holders(self, scope: str) -> int:
        """Slots of ``scope`` held now (expired ones not counted)."""
        count = await _COUNT(self._redis, [self._space.lease(scope)], [])
        return int(str(count))

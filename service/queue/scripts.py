"""Lua scripts run by their SHA1, so one round trip does an atomic check-and-set.

arq's own check-and-sets use WATCH/MULTI, several round trips each; the scripts here keep
its exact key layout and checks (arq is pinned in pyproject.toml for that reason).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Arg]) -> object:
        try:
            return await redis.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", self.sha, len(keys), *keys, *args
            )
        except NoScriptError:
            # First use on this server (or its script cache was flushed): send the source.
            return await redis.execute_command(  # type: ignore[no-untyped-call]
                "EVAL", self.source, len(keys), *keys, *args
            )

    async def load(self, redis: Redis) -> None:
        """Make sure the server knows the script, before queueing it in a pipeline."""
        await redis.script_load(self.source)

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a call to ``pipe``; the caller has :meth:`load`-ed the script."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

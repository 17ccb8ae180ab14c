"""Waiting on a condition with a generous deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Check = Callable[[], Awaitable[bool]] | Callable[[], bool]


async def until(check: Check, *, within: float, every: float = 0.05) -> float:
    """Wait until ``check()`` holds; returns the seconds waited. Raises TimeoutError after
    ``within`` seconds."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            held = check()
            if inspect.isawaitable(held):
                held = await held
            if held:
                return time.monotonic() - started
            await asyncio.sleep(every)

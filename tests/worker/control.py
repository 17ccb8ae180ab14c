"""In-process arq workers that stop between jobs, so no tick or run is cut off mid-way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from service.settings import Settings
from service.worker.app import build_worker


@contextlib.asynccontextmanager
async def worker_for(settings: Settings, queue: str) -> AsyncIterator[None]:
    """A worker stopped between two jobs (e.g. ticks) rather than in the middle of one."""
    worker = build_worker(settings, queue, handle_signals=False)
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        worker.allow_pick_jobs = False
        await asyncio.sleep(settings.worker.poll_delay * 2)
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()

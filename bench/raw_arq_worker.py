"""A bare arq worker with one no-op function: the baseline the run pipeline is measured against.

Same poll delay, concurrency and Redis as the opsjobs worker in the same bench run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from service.settings import load_settings


async def noop(ctx: dict[Any, Any], value: int) -> int:
    return value


async def main(queue: str) -> None:
    settings = load_settings()
    worker = Worker(
        functions=[func(noop, name="noop", keep_result=0)],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(settings.redis.url),
        burst=False,
        max_jobs=settings.worker.max_jobs,
        poll_delay=settings.worker.poll_delay,
        keep_result=0,
        log_results=False,
    )
    # Runs until SIGTERM, like an opsjobs worker; the bench measures it once it is polling.
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

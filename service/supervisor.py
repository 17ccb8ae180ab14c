"""``opsjobs up``: run the API and one worker per queue as child processes, supervised.

A child that exits on its own is restarted with a growing delay; Ctrl-C or SIGTERM stops
every child (SIGTERM, then SIGKILL after the grace period) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

RESTART_DELAYS_S = (1, 2, 5, 10, 30)
# A child that stayed up this long is healthy again: its next restart starts from 1 s.
STABLE_AFTER_S = 60


@dataclass(frozen=True)
class ChildSpec:
    name: str
    args: tuple[str, ...]


async def _run_child(spec: ChildSpec, stopping: asyncio.Event, grace: float) -> None:
    failures = 0
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops children.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", *spec.args, start_new_session=True
        )
        logger.info("started %s", spec.name, extra={"pid": process.pid})
        started = loop.time()
        wait_exit = asyncio.create_task(process.wait())
        wait_stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({wait_exit, wait_stop}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            wait_exit.cancel()
            await _stop(process, spec.name, grace)
            return
        wait_stop.cancel()
        failures = 0 if loop.time() - started > STABLE_AFTER_S else failures + 1
        delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)]
        logger.warning(
            "%s exited with code %s; restarting in %s s", spec.name, process.returncode, delay
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)


async def _stop(process: asyncio.subprocess.Process, name: str, grace: float) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=grace)
    except TimeoutError:
        logger.warning("%s did not stop within %s s; killing it", name, grace)
        process.kill()
        await process.wait()
    logger.info("stopped %s", name)


async def supervise(children: list[ChildSpec], grace: float) -> None:
    """Run the children until SIGINT/SIGTERM, then stop them all."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await asyncio.gather(*(_run_child(child, stopping, grace) for child in children))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

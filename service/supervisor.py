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

from service.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

RESTART_DELAYS_S = (1, 2, 5, 10, 30)
# A child that stayed up this long is healthy again: its next restart starts from 1 s.
STABLE_AFTER_S = 60


@dataclass(frozen=True)
class ChildSpec:
    """A child process: ``python -m <module> <args>``."""

    name: str
    args: tuple[str, ...]
    module: str = "service.cli"

    def command(self) -> tuple[str, ...]:
        return (sys.executable, "-m", self.module, *self.args)


# The simulators run as a module beside the product, which never imports them.
LAB_CHILD = ChildSpec("lab", ("serve",), module="lab")


async def prepare_lab() -> None:
    """Write the lab's files (its SSH host key, trusted in known_hosts) and wait for it."""
    process = await asyncio.create_subprocess_exec(
        *ChildSpec("lab", ("prepare",), module="lab").command()
    )
    if await process.wait() != 0:
        raise ServiceUnavailable(f"the lab could not prepare its files (exit {process.returncode})")


async def run_lab() -> int:
    """Run the lab in the foreground until it exits or a signal stops it; its exit code."""
    process = await asyncio.create_subprocess_exec(*LAB_CHILD.command())
    try:
        return await process.wait()
    except asyncio.CancelledError:
        await _stop(process, LAB_CHILD.name, grace=10)
        raise


async def _run_child(spec: ChildSpec, stopping: asyncio.Event, grace: float) -> None:
    failures = 0
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops children.
        process = await asyncio.create_subprocess_exec(*spec.command(), start_new_session=True)
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

"""``opsjobs up``: run the API and one worker per queue as child processes, supervised.

Every port ``up`` will listen on is checked free before anything starts (a busy one is a
one-line error naming the port and its setting). A child that exits on its own is
restarted with a growing delay, except one exiting with :data:`EXIT_SETTINGS` (a setting
it cannot run with, such as a port taken since): restarting cannot help, so every child
is stopped and ``up`` fails. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL
after the grace period) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from dataclasses import dataclass

from service.errors import InvalidInput, ServiceUnavailable
from service.settings import Settings

logger = logging.getLogger(__name__)

RESTART_DELAYS_S = (1, 2, 5, 10, 30)
# The exit code of every entry point refusing its settings or input (``opsjobs``,
# ``python -m lab``); a child exiting with it is not restarted.
EXIT_SETTINGS = 2
# The exit code when PostgreSQL or Redis cannot be reached: worth another try.
EXIT_UNREACHABLE = 3
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


@dataclass(frozen=True)
class ListenPort:
    """A port a process listens on, and the setting that chooses it."""

    setting: str
    host: str
    port: int

    @property
    def env(self) -> str:
        """The environment variable overriding the setting."""
        return "OPSJOBS_" + self.setting.upper().replace(".", "__")

    def in_use(self) -> str:
        return f"port {self.port} ({self.setting}) is in use; free it or set {self.env}"


def api_port(settings: Settings) -> ListenPort:
    return ListenPort("api.port", settings.api.host, settings.api.port)


def lab_ports(settings: Settings) -> list[ListenPort]:
    """The lab's fixed ports (its SSH devices listen on ports the system picks)."""
    lab = settings.lab
    return [
        ListenPort("lab.nifi_port", lab.host, lab.nifi_port),
        ListenPort("lab.nautobot_port", lab.host, lab.nautobot_port),
        ListenPort("lab.alerts_port", lab.host, lab.alerts_port),
        ListenPort("lab.smtp_port", lab.host, lab.smtp_port),
    ]


def bind(port: ListenPort) -> socket.socket:
    """A socket bound to ``port`` (as uvicorn and aiohttp bind: ``SO_REUSEADDR``); raises
    :class:`~service.errors.InvalidInput` with one line naming the port and its setting."""
    family = socket.AF_INET6 if ":" in port.host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says it is TCP, and without it small answers wait for the
    # client's delayed ACK (~40 ms each).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((port.host, port.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InvalidInput(port.in_use()) from None
        raise InvalidInput(
            f"cannot listen on {port.host}:{port.port} ({port.setting}): {exc.strerror}; "
            f"set {port.env}"
        ) from None
    return sock


def check_ports_free(ports: list[ListenPort]) -> None:
    """Raise for the first port (of a fixed number) some other process holds."""
    seen: dict[tuple[str, int], ListenPort] = {}
    for port in ports:
        if port.port == 0:
            continue
        earlier = seen.setdefault((port.host, port.port), port)
        if earlier is not port:
            raise InvalidInput(
                f"port {port.port} is both {earlier.setting} and {port.setting}; "
                f"set {port.env} to another port"
            )
        bind(port).close()


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


class ChildRefused(Exception):
    """A child exited with :data:`EXIT_SETTINGS`: it cannot run with these settings."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} refused its settings")
        self.name = name


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
        if process.returncode == EXIT_SETTINGS:
            # It said why on stderr; the same settings would fail the same way again.
            raise ChildRefused(spec.name)
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
    """Run the children until SIGINT/SIGTERM, then stop them all.

    Raises :class:`ChildRefused` (after stopping the others) when a child exits with
    :data:`EXIT_SETTINGS`.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    tasks = [asyncio.create_task(_run_child(child, stopping, grace)) for child in children]
    try:
        for finished in asyncio.as_completed(tasks):
            try:
                await finished
            except ChildRefused:
                stopping.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

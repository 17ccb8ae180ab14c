"""A private ``redis-server`` for fault tests: its own free port, no persistence, started,
stopped (SIGTERM or SIGKILL) and restarted on the same port at will.

Never the shared Redis: a fault test may do to this one whatever it likes.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Seconds a starting server has to answer, and a stopping one to exit.
START_WITHIN_S = 20.0
STOP_WITHIN_S = 20.0


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisInstance:
    """One private Redis on ``port``; :meth:`start` again after :meth:`stop` keeps the port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="opsjobs-fault-redis-"))
        self.log_path = self._dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--logfile",
                str(self.log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_WITHIN_S
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {self.port} did not answer")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL with ``kill``); its data is gone (no persistence)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_WITHIN_S)
        # The port is free again once nothing listens: a restart binds it at once.
        deadline = time.monotonic() + STOP_WITHIN_S
        while self._answers() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, down_for: float = 0.0, *, kill: bool = True) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port."""
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def redis_instance() -> Iterator[RedisInstance]:
    """A started private Redis for the block, stopped and removed afterwards."""
    instance = RedisInstance()
    instance.start()
    try:
        yield instance
    finally:
        instance.close()

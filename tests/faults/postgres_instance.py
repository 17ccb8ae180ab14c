"""A private PostgreSQL cluster for fault tests: its own data directory and port, which a
test may stop, restart and whose connections it may terminate.

``initdb`` refuses to run as root; as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg

PG_BIN = Path(os.environ.get("OPSJOBS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresInstance:
    """``initdb`` + ``pg_ctl`` on a free port in a temporary directory (trust auth)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="opsjobs-fault-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
            "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    async def terminate_backends(self, application_names: Sequence[str] = ("opsjobs",)) -> int:
        """``pg_terminate_backend`` every connection with one of these application names;
        returns how many were terminated."""
        conn = await asyncpg.connect(self.url(driver="postgresql"))
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid, 5000) AS done FROM pg_stat_activity"
                " WHERE application_name = ANY($1::text[]) AND pid <> pg_backend_pid()",
                list(application_names),
            )
        finally:
            await conn.close()
        return sum(1 for row in rows if row["done"])


@contextlib.asynccontextmanager
async def postgres_instance() -> AsyncIterator[PostgresInstance]:
    """A started private cluster for the block; removed afterwards."""
    instance = PostgresInstance()
    try:
        await asyncio.to_thread(instance.init)
        await asyncio.to_thread(instance.start)
        yield instance
    finally:
        await asyncio.to_thread(instance.remove)

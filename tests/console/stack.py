"""``opsjobs up`` with the lab, on free ports, with its own Redis and database.

The console's browser tests watch real runs of real workers; the stack gets a private
``redis-server`` (the suite's Redis database is flushed between tests) and a database of
its own, and is stopped with its whole process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Stack:
    url: str
    env: dict[str, str]
    admin_token: str

    def api(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=20)


async def _recreate_database(url: str) -> None:
    parsed = make_url(url)
    maintenance = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(maintenance.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        await process.wait()


async def _cli(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        *args,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def _wait_until_seeded(
    url: str, env: dict[str, str], process: asyncio.subprocess.Process
) -> str:
    """The API answers, and the lab has seeded its templates; returns an admin token."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            assert process.returncode is None, "opsjobs up stopped while starting"
            assert asyncio.get_running_loop().time() < deadline, "opsjobs up did not start"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(0.2)
        token = await _cli(env, "token", "create", "--name", "console-admin", "--role", "admin")
        headers = {"Authorization": f"Bearer {token}"}
        while True:
            assert asyncio.get_running_loop().time() < deadline, "the lab did not seed"
            answer = await http.get("/api/job-templates", headers=headers)
            if answer.status_code == 200 and answer.json()["total"] >= 3:
                return token
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def opsjobs_up(directory: Path, *, database: str = "console") -> AsyncIterator[Stack]:
    """The stack on the database ``<test database>_<database>`` (made afresh)."""
    database_url = f"{TEST_DATABASE_URL}_{database}"
    await _recreate_database(database_url)
    async with private_redis(directory) as redis_url:
        api_port, nifi_port, nautobot_port = free_port(), free_port(), free_port()
        alerts_port, smtp_port = free_port(), free_port()
        env = {
            **os.environ,
            "OPSJOBS_DATABASE__URL": database_url,
            "OPSJOBS_REDIS__URL": redis_url,
            "OPSJOBS_API__PORT": str(api_port),
            "OPSJOBS_LAB__ENABLED": "true",
            "OPSJOBS_LAB__NIFI_PORT": str(nifi_port),
            "OPSJOBS_LAB__NAUTOBOT_PORT": str(nautobot_port),
            "OPSJOBS_LAB__ALERTS_PORT": str(alerts_port),
            "OPSJOBS_LAB__SMTP_PORT": str(smtp_port),
            "OPSJOBS_LAB__DEVICE_COUNT": "8",
            "OPSJOBS_LAB__STATE_DIR": str(directory / "lab"),
            "OPSJOBS_SECRETS__KEY_FILE": str(directory / "keys.json"),
            "OPSJOBS_SSH__KNOWN_HOSTS": str(directory / "known_hosts"),
            "OPSJOBS_GIT__CHECKOUT_ROOT": str(directory / "git"),
            # One run at a time per worker: a run queued behind another is still pending
            # when its page opens, so the page sees it start, progress and end.
            "OPSJOBS_WORKER__MAX_JOBS": "1",
        }
        log = (directory / "up.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "up",
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{api_port}"
            token = await _wait_until_seeded(url, env, process)
            yield Stack(url=url, env=env, admin_token=token)
        finally:
            if process.returncode is None:
                # The supervisor stops its children (API, workers, lab) on SIGTERM.
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
            log.close()

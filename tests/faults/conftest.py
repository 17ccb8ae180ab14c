"""Fixtures of the fault tests: a private Redis, real ``opsjobs worker`` processes on it and
on the test database, and the services of a client of both.

Workers run with the product's default reaper, heartbeat and poll settings unless a test
says otherwise; only the stores, the key file and the queue names are the tests' own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest

from executors.services import Services
from service.keyspace import open_redis
from service.runs.reporting import EventPublisher
from service.settings import RedisSettings as OpsRedisSettings
from tests.conftest import TEST_DATABASE_URL, TEST_KEY_FILE
from tests.faults.redis_instance import RedisInstance

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``opsjobs worker --queue <queue>`` as a child process, its log in a file."""

    def __init__(self, name: str, queue: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.queue = queue
        self._env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.cli",
                "worker",
                "--queue",
                self.queue,
                env=self._env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no clean-up; Redis and PostgreSQL keep what it left."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, grace: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def private_redis() -> Iterator[RedisInstance]:
    instance = RedisInstance()
    instance.start()
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
async def fault_services(
    services: Services, private_redis: RedisInstance
) -> AsyncIterator[Services]:
    """The test services (a clean database) on the private Redis instead of the shared one."""
    url = private_redis.url()
    # Several tries: the private Redis may be restarting when a test's client reconnects.
    settings = services.settings.model_copy(update={"redis": OpsRedisSettings(url=url)})
    pool = await open_redis(url, settings.redis.prefix, retry=5)
    try:
        yield dataclasses.replace(
            services,
            settings=settings,
            redis=pool,
            events=EventPublisher(pool, settings.events),
        )
    finally:
        await pool.aclose()


@pytest.fixture
def worker_env(
    fault_services: Services, private_redis: RedisInstance, tmp_path: Path
) -> dict[str, str]:
    """The environment of a worker process: the test stores, otherwise default settings."""
    empty = tmp_path / "settings.toml"
    empty.write_text("")
    queues = fault_services.settings.queues
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        {
            "OPSJOBS_SETTINGS_FILE": str(empty),
            "OPSJOBS_DATABASE__URL": TEST_DATABASE_URL,
            "OPSJOBS_DATABASE__POOL_SIZE": "5",
            "OPSJOBS_REDIS__URL": private_redis.url(),
            "OPSJOBS_SECRETS__KEY_FILE": str(TEST_KEY_FILE),
            "OPSJOBS_QUEUES__DEFAULT": queues.default,
            "OPSJOBS_QUEUES__DEVICES": queues.devices,
            "OPSJOBS_QUEUES__SCHEDULER": queues.scheduler,
            "OPSJOBS_NAUTOBOT__URL": "",
            "OPSJOBS_LAB__ENABLED": "false",
        }
    )
    return env


@pytest.fixture
async def workers(
    worker_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[dict[str, WorkerProcess]]:
    """Worker processes a test starts by name (``add``); all stopped at its end."""
    started: dict[str, WorkerProcess] = {}
    yield started
    await asyncio.gather(*(worker.stop() for worker in started.values()))


async def add_worker(
    workers: dict[str, WorkerProcess],
    name: str,
    queue: str,
    env: Mapping[str, str],
    log_dir: Path,
    **overrides: str,
) -> WorkerProcess:
    worker = WorkerProcess(name, queue, {**env, **overrides}, log_dir)
    workers[name] = worker
    await worker.start()
    return worker

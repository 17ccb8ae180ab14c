"""Redis down when a run is requested: the run is committed, the answer is 202 with
``queued: false``, and the run runs once Redis is back (the reconciler queues it)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from executors.services import Services
from service.api.app import create_app
from service.db.models import RunStatus
from service.db.security_models import Role
from service.settings import QueueSettings, RedisSettings, Settings
from service.worker import maintenance
from tests.conftest import free_port, make_settings, token_for
from tests.workers import running_worker, wait_for_run


class PrivateRedis:
    """A ``redis-server`` of this test's own, stopped and started again on one port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="opsjobs-fault-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            )
            if probe.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            for path in Path(server.dir).iterdir():
                path.unlink()
            Path(server.dir).rmdir()


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_run_requested_while_redis_is_down_is_accepted_and_runs(
    services: Services, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reconciler re-queues runs older than this; its default leaves room for the commit
    # → enqueue gap of a live request.
    monkeypatch.setattr(maintenance, "RECONCILE_MIN_AGE_S", 1)
    settings = make_settings(
        redis=RedisSettings(url=private_redis.url),
        queues=QueueSettings(default="r-runs", devices="r-devices", scheduler="r-runs"),
    )
    token = await token_for(services, Role.ADMIN, "admin")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "while-redis-is-down"}
    body = {"job_type": "diag.echo", "parameters": {"message": "later"}}
    async with (
        serving(settings) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http,
    ):
        private_redis.stop()
        started = time.monotonic()
        accepted = await http.post("/api/job-runs", json=body)
        took = time.monotonic() - started
        repeated = await http.post("/api/job-runs", json=body)
        not_ready = await http.get("/readyz")
        private_redis.start()
        assert accepted.status_code == 202, f"answer with Redis down: {accepted.text}"
        run = accepted.json()
        assert run["status"] == RunStatus.PENDING.value
        assert run["queued"] is False
        assert took < 10, f"the answer took {took:.1f} s"
        assert not_ready.status_code == 503
        error = not_ready.json()["error"]
        assert error["code"] == "service_unavailable"
        assert error["message"] == "not ready: redis unavailable"
        assert error["details"]["checks"]["database"] == "ok"
        # The client's retry with the same key is the same answer, not a second run.
        assert (repeated.status_code, repeated.json()) == (202, run)

        async with running_worker(settings, "r-runs"):
            ended = await wait_for_run(services.sessions, run["id"], within=60)
        assert ended.status == RunStatus.COMPLETED.value, (ended.status, ended.error)
        again = await http.post("/api/job-runs", json=body, headers={"Idempotency-Key": "up"})
        assert again.status_code == 202
        assert again.json()["queued"] is True

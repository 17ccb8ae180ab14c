"""Worker heartbeats: live workers are listed with their running runs; stopped ones vanish."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import UTC, datetime
from typing import Any

import httpx

from executors.services import Services
from service.db.models import TriggeredBy
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.settings import WorkerHealthSettings
from service.worker.health import beat, live_workers
from tests.conftest import make_settings
from tests.worker.control import worker_for
from tests.workers import wait_for_run

FAST_BEATS = WorkerHealthSettings(interval=0.05, ttl=1)


async def _workers(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/workers")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _first_worker_running_something(client: httpx.AsyncClient) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            workers = (await _workers(client))["workers"]
            if workers and workers[0]["running_runs"]:
                worker: dict[str, Any] = workers[0]
                return worker
            await asyncio.sleep(0.05)


async def test_a_running_worker_is_listed_with_its_runs(
    client: httpx.AsyncClient, services: Services
) -> None:
    settings = make_settings(worker_health=FAST_BEATS)
    request = RunRequest(
        job_type="diag.progress",
        job_name="slow",
        queue=settings.queues.default,
        parameters={"steps": 8, "delay": 0.1},
        triggered_by=TriggeredBy.API,
    )
    async with worker_for(settings, settings.queues.default):
        run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
        await wait_for_run(services.sessions, run_id, min_progress=1)
        worker = await _first_worker_running_something(client)
        assert worker["running_runs"] == [run_id]
        assert worker["queue"] == settings.queues.default
        assert worker["pid"] == os.getpid()
        assert worker["version"] == "0.1.0"
        assert (await _workers(client))["by_queue"] == {settings.queues.default: 1}
        assert 0 <= worker["beat_age_seconds"] < 1
        await wait_for_run(services.sessions, run_id)
    assert (await _workers(client))["workers"] == []


async def test_a_silent_worker_expires(services: Services) -> None:
    short_lived = dataclasses.replace(
        services,
        worker_id="gone-worker",
        settings=make_settings(worker_health=WorkerHealthSettings(interval=1, ttl=0.2)),
    )
    record = await beat(short_lived, "t-default", datetime.now(UTC))
    assert await live_workers(services.redis) == [record]
    await asyncio.sleep(0.3)
    assert await live_workers(services.redis) == []

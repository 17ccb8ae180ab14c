"""cache_devices: fired by the cron as a system run, filling the cache resolution uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.inventory.cache import DeviceCache
from service.keyspace import KeySpace
from service.worker.context import WorkerContext
from service.worker.crons import cron_jobs
from service.worker.device_cache import cache_devices_cron, interval_fields
from tests.conftest import TEST_REDIS_PREFIX, make_settings
from tests.device_lab import (
    DeviceLab,
    add_command_template,
    add_credential,
    eight_device_lab,
    run_device_job,
    target_rows,
)
from tests.workers import drain


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


@pytest.mark.parametrize(
    ("interval", "fields"),
    [
        (1, {"second": set(range(60))}),
        (7, {"second": {0, 6, 12, 18, 24, 30, 36, 42, 48, 54}}),
        (60, {"minute": set(range(60)), "second": 0}),
        (900, {"minute": {0, 15, 30, 45}, "second": 0}),
        (7 * 60, {"minute": set(range(0, 60, 6)), "second": 0}),
        (3600, {"hour": set(range(24)), "minute": 0, "second": 0}),
        (5 * 3600, {"hour": {0, 4, 8, 12, 16, 20}, "minute": 0, "second": 0}),
        (7 * 24 * 3600, {"hour": {0}, "minute": 0, "second": 0}),
    ],
)
def test_interval_fields(interval: float, fields: dict[str, Any]) -> None:
    assert interval_fields(interval) == fields


def test_the_cron_runs_only_where_nautobot_is_configured() -> None:
    def names(**overrides: object) -> set[str]:
        return {job.name for job in cron_jobs(make_settings(**overrides))}

    # Cron names are the installation's own (arq's per-fire job ids start with them).
    cache_cron = KeySpace(TEST_REDIS_PREFIX).cron("cache_devices")

    assert cache_cron not in names()
    assert cache_cron in names(nautobot={"url": "http://127.0.0.1:1", "token": "t"})
    assert cache_cron not in names(
        nautobot={"url": "http://127.0.0.1:1", "token": "t", "cache_interval": 0}
    )


async def test_the_cron_queues_a_system_run_that_fills_the_cache(
    services: Services, device_lab: DeviceLab
) -> None:
    ctx: WorkerContext = {"services": services}
    assert await cache_devices_cron(ctx) == 1
    # A refresh still pending is not doubled.
    assert await cache_devices_cron(ctx) == 0
    await drain(device_lab.settings, device_lab.settings.queues.default)
    async with services.sessions() as session:
        run = (await session.scalars(select(JobRun))).one()
    assert (run.job_type, run.triggered_by, run.status) == (
        "cache_devices",
        TriggeredBy.SYSTEM,
        RunStatus.COMPLETED,
    )
    assert run.result == {"devices_cached": 8, "ttl_seconds": 1800.0}
    cached = await DeviceCache(services.redis, ttl=60).read()
    assert cached is not None
    assert sorted(d.name for d in cached.devices.values()) == sorted(
        d.name for d in device_lab.inventory.devices
    )
    assert await services.redis.pttl(services.keyspace.device_cache()) > 1_700_000


async def test_runs_take_device_records_from_the_fresh_cache(
    services: Services, device_lab: DeviceLab
) -> None:
    await cache_devices_cron({"services": services})
    await drain(device_lab.settings, device_lab.settings.queues.default)
    credential = await add_credential(services)
    template = await add_command_template(services, "show version\n")
    requests_before = device_lab.nautobot.requests
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"all": True}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED
    assert len(await target_rows(services, run.id)) == 8
    # "All devices" came from the cache: Nautobot was not asked.
    assert device_lab.nautobot.requests == requests_before
    assert run.result is not None
    assert run.result["targets_from_cache"] is True

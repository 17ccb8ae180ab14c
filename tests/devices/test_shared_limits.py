"""Concurrency limits that hold across worker processes: leases in Redis.

Two workers (each with its own SSH runner and process-local limits) share one device: the
SSH lab counts the sessions open at once. A holder that stops renewing (a killed worker)
frees its slot within the lease. A template's ``max_concurrent_runs`` holds across workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from pathlib import Path

from executors import get_executor
from executors.services import Services
from service.db.models import JobTemplate, RunStatus, TriggeredBy
from service.queue.leases import Leases, Slot
from service.runs import lifecycle
from service.runs.requests import adhoc_request
from service.settings import LeaseSettings
from tests.device_lab import (
    DeviceLab,
    add_command_template,
    add_credential,
    eight_device_lab,
    load_run,
)
from tests.workers import drain, running_worker, wait_for_run


async def _queue_runs(
    services: Services, lab: DeviceLab, device_id: str, count: int, credential: int, template: int
) -> list[int]:
    request = adhoc_request(
        lab.settings,
        get_executor,
        job_type="run_commands",
        parameters={"targets": {"device_ids": [device_id]}, "command_template_id": template},
        triggered_by=TriggeredBy.API,
        executed_by="admin",
    )
    request = dataclasses.replace(request, credential_id=credential)
    return [
        await lifecycle.enqueue_run(services.sessions, services.redis, request)
        for _ in range(count)
    ]


async def test_two_workers_never_exceed_one_session_per_device(
    services: Services, tmp_path: Path
) -> None:
    async with eight_device_lab(tmp_path) as lab:
        credential = await add_credential(services)
        template = await add_command_template(services, "show version\nshow clock\n")
        device = lab.inventory.devices[0]
        lab.fleet.device(device.name).latency = 0.15
        run_ids = await _queue_runs(services, lab, device.id, 6, credential, template)
        # Two burst workers of the devices queue at once, each free to take several runs.
        await asyncio.gather(
            drain(lab.settings, lab.devices_queue), drain(lab.settings, lab.devices_queue)
        )
        runs = [await load_run(services, run_id) for run_id in run_ids]
    assert {run.status for run in runs} == {RunStatus.COMPLETED}
    assert len({run.worker_id for run in runs}) == 2  # both workers took runs
    assert lab.fleet.device(device.name).logins == 6
    assert lab.fleet.peak_sessions == 1  # the figure: sessions at once on the device


async def test_a_dead_holders_slot_frees_within_its_lease(
    services: Services, tmp_path: Path
) -> None:
    async with eight_device_lab(tmp_path) as lab:
        settings = lab.settings.model_copy(update={"leases": LeaseSettings(ttl=1.5, poll=0.05)})
        credential = await add_credential(services)
        template = await add_command_template(services, "show version\n")
        device = lab.inventory.devices[0]
        # A worker took the device's slot and was killed: nobody renews it.
        dead = Leases(services.redis, ttl=1.5, poll=0.05)
        assert await dead.try_take([Slot(f"device:{device.id}", 1)], "killed-worker")
        started = time.monotonic()
        (run_id,) = await _queue_runs(services, lab, device.id, 1, credential, template)
        await drain(settings, lab.devices_queue)
        waited = time.monotonic() - started
        run = await load_run(services, run_id)
    assert run.status == RunStatus.COMPLETED
    assert 1.0 <= waited < 10  # the figure: the slot came back within the 1.5 s lease
    assert await dead.holders(f"device:{device.id}") == 0


async def test_a_templates_max_concurrent_runs_holds_across_workers(services: Services) -> None:
    async with services.sessions.begin() as session:
        template = JobTemplate(
            name="slow", job_type="diag.progress", is_global=True, max_concurrent_runs=1
        )
        session.add(template)
        await session.flush()
        template_id = template.id
    settings = services.settings
    request = adhoc_request(
        settings,
        get_executor,
        job_type="diag.progress",
        parameters={"steps": 4, "delay": 0.1},
        triggered_by=TriggeredBy.API,
        executed_by="admin",
    )
    request = dataclasses.replace(request, template_id=template_id)
    run_ids = [
        await lifecycle.enqueue_run(services.sessions, services.redis, request) for _ in range(3)
    ]
    async with running_worker(settings), running_worker(settings):
        runs = [await wait_for_run(services.sessions, run_id, within=40) for run_id in run_ids]
    assert {run.status for run in runs} == {RunStatus.COMPLETED}
    assert {run.attempt for run in runs} == {1}  # handed back untouched while waiting
    spans = sorted((run.started_at, run.finished_at) for run in runs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None
        assert start is not None
        assert start >= end  # the figure: never two runs of the template at once

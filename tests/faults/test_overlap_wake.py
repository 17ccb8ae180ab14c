"""Overlap policy ``queue``: the waiting run starts as soon as the run it waits for ends,
woken by that end, not at its next 5 s look."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.worker import dispatch
from tests.faults.conditions import until
from tests.faults.conftest import WorkerProcess, add_worker
from tests.faults.test_redis_outage import polling, statuses
from tests.scheduling.factories import make_schedule, make_template

PAIRS = 3


async def test_a_queued_run_starts_within_a_second_of_the_run_it_waits_for_ending(
    fault_services: Services,
    workers: dict[str, WorkerProcess],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    services = fault_services
    queue = services.settings.queues.default
    worker = await add_worker(workers, "default", queue, worker_env, tmp_path)
    await until(lambda: polling(services, worker), within=60)
    template_id = await make_template(services.sessions, job_type="diag.progress")
    pairs: list[tuple[int, int]] = []
    for pair in range(PAIRS):
        schedule_id = await make_schedule(
            services.sessions,
            template_id,
            None,
            is_active=False,
            overlap_policy="queue",
            job_identifier=f"overlap-{pair}",
        )
        first_request = RunRequest(
            job_type="diag.progress",
            job_name="diag.progress",
            queue=queue,
            parameters={"steps": 15, "delay": 0.2},
            triggered_by=TriggeredBy.SCHEDULE,
            template_id=template_id,
            schedule_id=schedule_id,
        )
        first = await lifecycle.enqueue_run(services.sessions, services.redis, first_request)
        await until(_status_is(services, first, RunStatus.RUNNING), within=30)
        waiting_request = dataclasses.replace(
            first_request, parameters={"steps": 1, "delay": 0}, wait_for_run_id=first
        )
        waiting = await lifecycle.enqueue_run(services.sessions, services.redis, waiting_request)
        pairs.append((first, waiting))

    run_ids = [run_id for pair in pairs for run_id in pair]

    async def ended() -> bool:
        found = await statuses(services, run_ids)
        return all(status == RunStatus.COMPLETED for status in found.values())

    await until(ended, within=90)
    delays = []
    async with services.sessions() as session:
        for first, waiting in pairs:
            ended_at = (await session.get_one(JobRun, first)).finished_at
            started_at = (await session.get_one(JobRun, waiting)).started_at
            assert ended_at is not None
            assert started_at is not None
            delays.append((started_at - ended_at).total_seconds())
    print(f"waiting runs started {delays} s after the runs they waited for ended")
    late = [delay for delay in delays if delay >= 1.0]
    assert late == [], (
        f"{len(late)} waiting runs started 1 s or more after the run they waited for ended "
        f"(delays {delays}; the fallback look is every {dispatch.WAIT_RETRY_S} s), 0 expected"
    )


def _status_is(services: Services, run_id: int, status: RunStatus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await statuses(services, [run_id])).get(run_id) == status

    return check

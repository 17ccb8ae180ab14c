"""The scheduler tick as arq cron in a real worker: a due schedule runs within 2 s of its fire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from executors.services import Services
from service.db.models import JobRun, RunStatus
from service.settings import Settings
from tests.scheduling.factories import make_schedule, make_template
from tests.worker.control import worker_for
from tests.workers import wait_for_run

LATENESS_LIMIT = timedelta(seconds=2)


async def test_a_due_schedule_is_queued_within_two_seconds_and_runs(
    settings: Settings, services: Services
) -> None:
    template_id = await make_template(services.sessions, config={"message": "tick"})
    fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    schedule_id = await make_schedule(services.sessions, template_id, fire)

    async with (
        worker_for(settings, settings.queues.scheduler),
        worker_for(settings, settings.queues.default),
    ):
        async with asyncio.timeout(10):
            while True:
                async with services.sessions() as session:
                    run_id = await session.scalar(
                        select(JobRun.id).where(JobRun.schedule_id == schedule_id)
                    )
                if run_id is not None:
                    break
                await asyncio.sleep(0.05)
        run = await wait_for_run(services.sessions, run_id)

    assert run.status == RunStatus.COMPLETED.value
    assert run.summary == "tick"
    assert run.scheduled_for == fire
    assert timedelta(0) <= run.queued_at - fire <= LATENESS_LIMIT

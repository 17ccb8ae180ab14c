"""``opsjobs lab``: simulators seeded into the database give real runs out of the box."""

from __future__ import annotations

from sqlalchemy import func, select

from service import runs
from service.db.models import JobRun, JobSchedule, JobTemplate, RunStatus, TriggeredBy
from service.lab.stack import nifi_lab, seed_nifi
from service.nifi.models import NifiClusterRow, NifiInstanceRow
from service.resources import Services
from service.run_requests import template_request
from service.settings import LabSettings
from tests.workers import drain


async def count(services: Services, model: type) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_seeded_lab_runs_a_real_check(services: Services) -> None:
    async with nifi_lab(LabSettings(nifi_port=0)) as clusters:
        await seed_nifi(services.sessions, services.keys, clusters)
        await seed_nifi(services.sessions, services.keys, clusters)  # idempotent
        assert await count(services, NifiClusterRow) == 2
        assert await count(services, NifiInstanceRow) == 6
        assert await count(services, JobTemplate) == 1
        async with services.sessions() as session:
            schedule = (await session.scalars(select(JobSchedule))).one()
            template = (await session.scalars(select(JobTemplate))).one()
        assert schedule.next_run_at is not None

        request = template_request(
            services.settings,
            template,
            overrides={},
            triggered_by=TriggeredBy.MANUAL,
            executed_by="test",
        )
        run_id = await runs.enqueue_run(services.sessions, services.redis, request)
        await drain(services.settings)
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.outcome == "critical"
    assert run.result is not None
    assert run.result["summary"] == {"green": 1, "yellow": 0, "red": 1}

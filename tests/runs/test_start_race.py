"""A run waiting for another is never dropped when that run ends while it is being taken.

The interleaving is forced: the statement taking the waiting run is wrapped so that the
run it waits for ends (committed, on a connection of its own) right after that statement
returns — after the take was refused because the other run was still running, and before
anything else the taker does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from executors.services import Services
from service.db.engine import DriverStatement, SessionFactory
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.queue import transport
from service.runs import lifecycle
from service.runs.lifecycle import RunMustWait, RunRequest


def _echo(services: Services) -> RunRequest:
    return RunRequest(
        job_type="diag.echo",
        job_name="diag.echo",
        queue=services.settings.queues.default,
        parameters={"message": "hi"},
        triggered_by=TriggeredBy.API,
    )


class EndsRunAfterwards:
    """The start statement, followed at once by the end of run ``ends``."""

    def __init__(self, statement: DriverStatement, url: str, ends: int) -> None:
        self.statement = statement
        self.url = url
        self.ends = ends
        self.calls = 0

    async def fetchrow(self, sessions: SessionFactory, **params: Any) -> Any:
        row = await self.statement.fetchrow(sessions, **params)
        self.calls += 1
        if self.calls == 1:
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(
                    "UPDATE job_runs SET status = 'completed', finished_at = now() WHERE id = $1",
                    self.ends,
                )
            finally:
                await conn.close()
        return row


async def test_a_pending_run_is_not_dropped_when_its_blocker_ends_mid_start(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    blocking = await lifecycle.enqueue_run(sessions, services.redis, _echo(services))
    await transport.discard_job(services.redis, blocking, services.settings.queues.default)
    assert await lifecycle.mark_running(sessions, blocking, "elsewhere") is not None
    waiting = await lifecycle.enqueue_run(
        sessions, services.redis, dataclasses.replace(_echo(services), wait_for_run_id=blocking)
    )
    url = make_url(services.settings.database.url).set(drivername="postgresql")
    racing = EndsRunAfterwards(
        lifecycle._MARK_RUNNING, url.render_as_string(hide_password=False), blocking
    )
    monkeypatch.setattr(lifecycle, "_MARK_RUNNING", racing)

    with pytest.raises(RunMustWait) as raised:
        await lifecycle.mark_running(sessions, waiting, "w")
    assert raised.value.blocking_run_id == blocking
    async with sessions() as session:
        assert (await session.get_one(JobRun, waiting)).status == RunStatus.PENDING.value
        assert (await session.get_one(JobRun, blocking)).status == RunStatus.COMPLETED.value
    # Its next delivery takes it.
    started = await lifecycle.mark_running(sessions, waiting, "w")
    assert started is not None
    assert started.attempt == 1

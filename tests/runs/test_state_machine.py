"""Invariant 3: every status change is guarded; late writers change nothing."""

from __future__ import annotations

import pytest

from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.errors import Conflict, NotFound
from service.runs import lifecycle
from service.runs.lifecycle import RunEnd, RunRequest


async def new_run(services: Services) -> int:
    request = RunRequest(
        job_type="diag.echo",
        job_name="diag.echo",
        queue=services.settings.queues.default,
        parameters={"message": "x"},
        triggered_by=TriggeredBy.MANUAL,
    )
    return await lifecycle.enqueue_run(services.sessions, services.redis, request)


async def status_of(services: Services, run_id: int) -> str:
    async with services.sessions() as session:
        return (await session.get_one(JobRun, run_id)).status


async def test_completion_after_cancel_is_refused(services: Services) -> None:
    run_id = await new_run(services)
    assert await lifecycle.request_cancel(services.sessions, services.redis, run_id, "alice") == (
        RunStatus.CANCELLED
    )
    late = RunEnd(status=RunStatus.COMPLETED, outcome="ok", result={"late": True})
    assert not await lifecycle.finish_run(services.sessions, run_id, 0, late)
    assert await lifecycle.mark_running(services.sessions, run_id, "w") is None
    async with services.sessions() as session:
        run = await session.get_one(JobRun, run_id)
    assert run.status == RunStatus.CANCELLED
    assert run.result is None
    assert run.cancelled_by == "alice"


@pytest.mark.parametrize("end", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
async def test_terminal_states_are_final(services: Services, end: RunStatus) -> None:
    run_id = await new_run(services)
    start = await lifecycle.mark_running(services.sessions, run_id, "w")
    assert start is not None
    assert start.attempt == 1
    assert await lifecycle.finish_run(services.sessions, run_id, 1, RunEnd(status=end))
    for later in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        assert not await lifecycle.finish_run(services.sessions, run_id, 1, RunEnd(status=later))
    assert not await lifecycle.return_to_pending(services.sessions, run_id, 1, "x")
    assert await status_of(services, run_id) == end.value
    with pytest.raises(Conflict):
        await lifecycle.request_cancel(services.sessions, services.redis, run_id, None)


async def test_pending_run_cannot_complete_without_running(services: Services) -> None:
    run_id = await new_run(services)
    assert not await lifecycle.finish_run(services.sessions, run_id, 0, RunEnd(RunStatus.COMPLETED))
    assert await status_of(services, run_id) == "pending"


async def test_stale_attempt_cannot_write(services: Services) -> None:
    run_id = await new_run(services)
    assert await lifecycle.mark_running(services.sessions, run_id, "w1") is not None
    assert await lifecycle.return_to_pending(services.sessions, run_id, 1, "shutdown")
    second = await lifecycle.mark_running(services.sessions, run_id, "w2")
    assert second is not None
    assert second.attempt == 2
    heartbeat = await lifecycle.record_heartbeat(services.sessions, run_id, 1)
    assert not heartbeat.still_ours
    assert not await lifecycle.finish_run(services.sessions, run_id, 1, RunEnd(RunStatus.FAILED))
    assert await lifecycle.finish_run(services.sessions, run_id, 2, RunEnd(RunStatus.COMPLETED))


async def test_cancel_of_running_run_is_a_request(services: Services) -> None:
    run_id = await new_run(services)
    await lifecycle.mark_running(services.sessions, run_id, "w")
    status = await lifecycle.request_cancel(services.sessions, services.redis, run_id, "bob")
    assert status == RunStatus.RUNNING
    beat = await lifecycle.record_heartbeat(services.sessions, run_id, 1)
    assert beat.still_ours
    assert beat.cancel_requested


async def test_cancel_of_missing_run(services: Services) -> None:
    with pytest.raises(NotFound):
        await lifecycle.request_cancel(services.sessions, services.redis, 12345, None)


async def test_hot_path_statement_refuses_a_missing_parameter(services: Services) -> None:
    with pytest.raises(TypeError, match="worker_id"):
        await lifecycle._MARK_RUNNING.fetchrow(services.sessions, run_id=1)

"""``/metrics``: Prometheus text computed from the database and Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn
from sqlalchemy import update

from executors.services import Services
from service.api.app import create_app
from service.api.metrics import DURATION_BUCKETS, Family, render
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.db.security_models import Role
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.settings import ApiSettings
from service.worker.health import beat
from tests.conftest import free_port, make_settings

AsRole = Callable[[Role, str], AbstractAsyncContextManager[httpx.AsyncClient]]
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> tuple[dict[str, float], dict[str, str]]:
    """Samples keyed by ``name{labels}`` and the declared type of each family."""
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, line
            samples[f"{match[1]}{match[2] or ''}"] = float(match[3])
    return samples, types


async def add_run(
    services: Services,
    job_type: str,
    status: RunStatus,
    *,
    outcome: str | None = None,
    duration: float | None = None,
    queue: str | None = None,
) -> int:
    request = RunRequest(
        job_type=job_type,
        job_name=job_type,
        queue=queue or services.settings.queues.default,
        parameters={},
        triggered_by=TriggeredBy.API,
    )
    run_id = await lifecycle.enqueue_run(services.sessions, services.redis, request)
    values: dict[str, object] = {"status": status.value, "outcome": outcome}
    if duration is not None:
        finished = datetime.now(UTC)
        values.update(finished_at=finished, started_at=finished - timedelta(seconds=duration))
    elif status is RunStatus.RUNNING:
        values.update(started_at=datetime.now(UTC))
    async with services.sessions.begin() as session:
        await session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))
    return run_id


async def test_runs_queues_and_scheduler(anonymous: httpx.AsyncClient, services: Services) -> None:
    await add_run(services, "diag.echo", RunStatus.COMPLETED, outcome="ok", duration=0.3)
    await add_run(services, "diag.echo", RunStatus.COMPLETED, outcome="ok", duration=2)
    await add_run(services, "diag.echo", RunStatus.FAILED, outcome="unknown", duration=45)
    # Exactly on a bucket bound: counted in that bucket (``le``, less than or equal).
    await add_run(services, "diag.echo", RunStatus.FAILED, outcome="unknown", duration=5)
    await add_run(services, "diag.progress", RunStatus.RUNNING)
    await add_run(services, "diag.progress", RunStatus.PENDING)
    await add_run(services, "diag.progress", RunStatus.CANCELLED)
    await services.redis.hset(
        services.keyspace.scheduler_tick(),
        mapping={"at": datetime.now(UTC).isoformat(), "lag": "0.250", "claimed": 0},
    )

    response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples, types = parse(response.text)
    assert types["opsjobs_runs_started_total"] == "counter"
    assert types["opsjobs_run_duration_seconds"] == "histogram"
    assert types["opsjobs_queue_pending_runs"] == "gauge"

    assert samples['opsjobs_runs_started_total{job_type="diag.echo"}'] == 4
    assert samples['opsjobs_runs_started_total{job_type="diag.progress"}'] == 1
    prefix = "opsjobs_runs_finished_total"
    finished = {key[len(prefix) :]: value for key, value in samples.items() if prefix in key}
    assert finished == {
        '{job_type="diag.echo",status="completed",outcome="ok"}': 2,
        '{job_type="diag.echo",status="failed",outcome="unknown"}': 2,
        '{job_type="diag.progress",status="cancelled",outcome="none"}': 1,
    }
    echo = 'opsjobs_run_duration_seconds_bucket{job_type="diag.echo",le="%s"}'
    assert samples[echo % "0.1"] == 0
    assert samples[echo % "0.5"] == 1
    assert samples[echo % "1"] == 1
    assert samples[echo % "5"] == 3
    assert samples[echo % "30"] == 3
    assert samples[echo % "60"] == 4
    assert samples[echo % "21600"] == 4
    assert samples[echo % "+Inf"] == 4
    assert samples['opsjobs_run_duration_seconds_count{job_type="diag.echo"}'] == 4
    assert abs(samples['opsjobs_run_duration_seconds_sum{job_type="diag.echo"}'] - 52.3) < 0.01
    # Runs that never ran have no duration.
    assert samples['opsjobs_run_duration_seconds_count{job_type="diag.progress"}'] == 0

    default = services.settings.queues.default
    assert samples[f'opsjobs_queue_pending_runs{{queue="{default}"}}'] == 1
    assert samples[f'opsjobs_queue_running_runs{{queue="{default}"}}'] == 1
    # Every enqueued run still has its job in the arq queue: nothing consumed them.
    assert samples[f'opsjobs_queue_arq_jobs{{queue="{default}"}}'] == 7
    assert samples[f'opsjobs_queue_oldest_pending_age_seconds{{queue="{default}"}}'] >= 0
    assert samples["opsjobs_scheduler_lag_seconds"] == 0.25
    assert 0 <= samples["opsjobs_scheduler_last_tick_age_seconds"] < 5


async def test_scheduler_metrics_are_absent_before_a_tick(
    anonymous: httpx.AsyncClient, services: Services
) -> None:
    text = (await anonymous.get("/metrics")).text
    assert "opsjobs_scheduler_lag_seconds" not in text
    assert "opsjobs_queue_pending_runs" in text


async def test_live_workers_are_counted_per_queue(
    anonymous: httpx.AsyncClient, services: Services
) -> None:
    queues = services.settings.queues
    samples, _ = parse((await anonymous.get("/metrics")).text)
    assert samples[f'opsjobs_workers{{queue="{queues.default}"}}'] == 0
    await beat(services, queues.default, datetime.now(UTC))
    samples, types = parse((await anonymous.get("/metrics")).text)
    assert types["opsjobs_workers"] == "gauge"
    assert samples[f'opsjobs_workers{{queue="{queues.default}"}}'] == 1
    assert samples[f'opsjobs_workers{{queue="{queues.devices}"}}'] == 0


def test_label_values_are_escaped() -> None:
    family = Family("x_total", "counter", "a\\b")
    family.add(1.5, job_type='say "hi"\n')
    assert render([family]) == (
        '# HELP x_total a\\\\b\n# TYPE x_total counter\nx_total{job_type="say \\"hi\\"\\n"} 1.5\n'
    )
    assert tuple(sorted(DURATION_BUCKETS)) == DURATION_BUCKETS


@asynccontextmanager
async def closed_metrics_api() -> AsyncIterator[str]:
    settings = make_settings(api=ApiSettings(metrics_open=False))
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port())
    config.log_config = None
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


async def test_closed_metrics_need_queue_read_permission(
    services: Services, as_role: AsRole
) -> None:
    async with closed_metrics_api() as url, httpx.AsyncClient(base_url=url) as http:
        anonymous = await http.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"
        async with as_role(Role.VIEWER, "vera") as viewer:
            token = viewer.headers["Authorization"]
        allowed = await http.get("/metrics", headers={"Authorization": token})
        assert allowed.status_code == 200
        assert "# TYPE opsjobs_run_duration_seconds histogram" in allowed.text

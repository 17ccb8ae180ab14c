"""A run that used a private resource is seen only by its owner and admins — in lists,
details, targets, progress, events, statistics, queue listings and metrics labels; a
global run is seen in full by every reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from executors.services import Services
from lab.alert_sink import AlertSink
from service.db.models import JobRun, RunStatus
from service.db.security_models import Credential
from tests.access.conftest import Team, created, device_credential, fire_schedule, team_for
from tests.conftest import WEBHOOK_SECRET
from tests.notify.conftest import finished_run, settle
from tests.workers import drain, enqueue_adhoc, running_worker


@pytest.fixture
async def runs_team(services: Services) -> AsyncIterator[Team]:
    async with team_for(services, services.settings) as clients:
        yield clients


async def _ids(client: httpx.AsyncClient, **params: object) -> set[int]:
    response = await client.get("/api/job-runs", params=params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_private_runs_are_seen_by_their_owner_and_admins_only(
    services: Services, runs_team: Team
) -> None:
    team = runs_team
    private_template = await created(
        team.alice,
        "/api/job-templates",
        {"name": "alice's echo", "job_type": "diag.echo", "config": {"message": "alice's"}},
    )
    mine = await created(team.alice, f"/api/job-templates/{private_template}/run", {})
    shared = await created(
        team.admin, "/api/job-runs", {"job_type": "diag.echo", "parameters": {"message": "all"}}
    )
    bobs = await created(
        team.bob, "/api/job-runs", {"job_type": "diag.echo", "parameters": {"message": "bob"}}
    )
    await drain(services.settings)

    assert await _ids(team.bob) == {shared, bobs}
    assert await _ids(team.alice) == {mine, shared, bobs}
    assert await _ids(team.admin) == {mine, shared, bobs}
    assert await _ids(team.bob, template_id=private_template) == set()
    for suffix in ("", "/targets", "/attempts", "/progress", "/events"):
        hidden = await team.bob.get(f"/api/job-runs/{mine}{suffix}")
        assert hidden.status_code == 404, suffix
        assert hidden.json()["error"]["code"] == "not_found"
        assert (await team.alice.get(f"/api/job-runs/{mine}{suffix}")).status_code == 200
    for method, suffix in (("POST", "/cancel"), ("POST", "/retry"), ("DELETE", "")):
        refused = await team.bob.request(method, f"/api/job-runs/{mine}{suffix}")
        assert refused.status_code == 404, suffix

    detail = (await team.alice.get(f"/api/job-runs/{mine}")).json()
    assert (detail["private_to"], detail["result"]) == ("alice", {"message": "alice's"})
    # A global run is shown in full to every reader: parameters, result, who ran it.
    seen = (await team.bob.get(f"/api/job-runs/{shared}")).json()
    assert (seen["private_to"], seen["parameters"], seen["result"], seen["executed_by"]) == (
        None,
        {"message": "all"},
        {"message": "all"},
        "root",
    )

    stats = {
        name: (await client.get("/api/job-runs/stats")).json()["total"]
        for name, client in (("bob", team.bob), ("alice", team.alice), ("admin", team.admin))
    }
    assert stats == {"bob": 2, "alice": 3, "admin": 3}
    # Bob's clean-up deletes what he sees, never alice's run.
    async with services.sessions.begin() as session:
        await session.execute(update(JobRun).values(queued_at=JobRun.queued_at - timedelta(days=2)))
    deleted = await team.bob.delete("/api/job-runs", params={"older_than_days": 1})
    assert deleted.json() == {"deleted": 2}
    assert await _ids(team.admin) == {mine}


async def test_a_private_templates_queue_is_named_only_to_those_who_see_its_runs(
    services: Services, runs_team: Team, anonymous: httpx.AsyncClient
) -> None:
    team = runs_team
    template = await created(
        team.alice,
        "/api/job-templates",
        {"name": "quiet", "job_type": "diag.echo", "queue": "alice-only-queue"},
    )
    await created(team.alice, f"/api/job-templates/{template}/run", {})

    async def queues(client: httpx.AsyncClient) -> set[str]:
        response = await client.get("/api/queues")
        return {item["name"] for item in response.json()["items"]}

    assert "alice-only-queue" in await queues(team.alice)
    assert "alice-only-queue" in await queues(team.admin)
    assert "alice-only-queue" not in await queues(team.bob)
    metrics = await anonymous.get("/metrics")
    assert metrics.status_code == 200
    assert "alice-only-queue" not in metrics.text


async def test_the_scheduler_status_names_only_schedules_the_caller_may_see(
    services: Services, runs_team: Team
) -> None:
    team = runs_team
    template = await created(
        team.alice, "/api/job-templates", {"name": "hourly", "job_type": "diag.echo"}
    )
    await created(
        team.alice,
        "/api/job-schedules",
        {
            "job_identifier": "alice hourly",
            "template_id": template,
            "is_global": False,
            "schedule_type": "interval",
            "interval_minutes": 60,
            "start_at": "2099-01-01T00:00:00Z",
        },
    )

    async def upcoming(client: httpx.AsyncClient) -> tuple[int, list[str]]:
        body = (await client.get("/api/scheduler/status")).json()
        return body["active_schedules"], [fire["job_identifier"] for fire in body["upcoming"]]

    assert await upcoming(team.alice) == (1, ["alice hourly"])
    assert await upcoming(team.bob) == (1, [])


async def test_a_scheduled_fire_using_a_private_credential_is_private_from_its_insert(
    services: Services, runs_team: Team
) -> None:
    team = runs_team
    private = await device_credential(team.alice, "alice-ssh", is_global=False)
    template = await created(
        team.admin,
        "/api/job-templates",
        {"name": "echo", "job_type": "diag.echo", "is_global": True},
    )
    schedule = await created(
        team.alice,
        "/api/job-schedules",
        {
            "job_identifier": "alice's global",
            "template_id": template,
            "is_global": True,
            "schedule_type": "interval",
            "interval_minutes": 60,
            "credential_id": private,
        },
    )
    await fire_schedule(services, services.settings, schedule)
    # Pending, no worker has seen it: bob never sees it, not even while it waits.
    (pending,) = await _ids(team.alice, schedule_id=schedule)
    detail = (await team.alice.get(f"/api/job-runs/{pending}")).json()
    assert (detail["status"], detail["private_to"]) == ("pending", "alice")
    assert await _ids(team.bob, schedule_id=schedule) == set()


async def test_a_watcher_stops_hearing_a_run_that_turned_private_when_it_started(
    services: Services, runs_team: Team
) -> None:
    team = runs_team
    shared = await device_credential(team.admin, "shared-ssh", is_global=True)
    run_id = await enqueue_adhoc(
        services,
        services.settings,
        "diag.progress",
        {"steps": 3, "delay": 0.01},
        executed_by="alice",
        credential_id=shared,
    )
    watching = {"alice": asyncio.Event(), "bob": asyncio.Event()}

    async def watch(name: str, client: httpx.AsyncClient) -> list[str]:
        kinds = []
        async with client.stream("GET", f"/api/job-runs/{run_id}/events") as response:
            assert response.status_code == 200  # a global run, pending: both may watch
            watching[name].set()
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kinds.append(line.removeprefix("event: "))
        return kinds

    alice = asyncio.create_task(watch("alice", team.alice))
    bob = asyncio.create_task(watch("bob", team.bob))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in watching.values())), 20)
    # The credential becomes alice's own before a worker starts the run.
    async with services.sessions.begin() as session:
        await session.execute(
            update(Credential).where(Credential.id == shared).values(is_global=False, owner="alice")
        )
    async with running_worker(services.settings):
        heard_by_alice = await asyncio.wait_for(alice, 20)
    heard_by_bob = await asyncio.wait_for(bob, 20)
    assert heard_by_alice.count("progress") >= 3
    assert heard_by_alice[-1] == "state"
    # Bob heard at most that it started: no progress, no final state with its summary.
    assert heard_by_bob in ([], ["state"])


async def test_a_private_runs_alerts_reach_only_its_owners_rules(
    services: Services, runs_team: Team, sink: AlertSink
) -> None:
    team = runs_team
    for name, client in (("alice", team.alice), ("bob", team.bob)):
        channel = await created(
            client,
            "/api/notifications/channels",
            {
                "name": name,
                "type": "webhook",
                "is_global": True,
                "config": {
                    "url": sink.hook_url("tests"),
                    "secret": WEBHOOK_SECRET,
                    "headers": {"X-Team": name},
                },
            },
        )
        # Global rules, both: a global rule hears global runs and its owner's private ones.
        await created(
            client,
            "/api/notifications/rules",
            {"name": name, "events": ["run.failed"], "channel_ids": [channel], "is_global": True},
        )
    private = await finished_run(services, status=RunStatus.FAILED, private_to="alice")
    shared = await finished_run(services, status=RunStatus.FAILED)
    await settle(services)
    heard: dict[str, set[int]] = {"alice": set(), "bob": set()}
    for call in sink.webhooks:
        heard[call.headers["x-team"]].add(call.body["run_id"])
    assert heard == {"alice": {private, shared}, "bob": {shared}}

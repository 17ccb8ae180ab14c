"""NiFi instances carry their credential: operator bob can neither take operator alice's
instance into a cluster, nor check or test through it — and a cluster that gains her
instance after bob scheduled it fails his run before any request is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from executors.services import Services
from lab.nifi import NifiLab
from lab.nifi_instance import LabInstance
from service.db.models import JobRun, RunStatus
from tests.access.conftest import Team, created, fire_schedule, refusal, team_for
from tests.executors.nifi_fixtures import NIFI_PASSWORD, NIFI_USER, queue_flow
from tests.workers import drain


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


@pytest.fixture
async def nifi_team(services: Services) -> AsyncIterator[Team]:
    async with team_for(services, services.settings) as clients:
        yield clients


async def _alice_instances(
    team: Team, lab: NifiLab, name: str
) -> tuple[list[int], list[LabInstance]]:
    """Two lab nodes demanding alice's private login, stored as instances."""
    credential = await created(
        team.alice,
        "/api/credentials",
        {
            "name": f"{name}-login",
            "type": "username_password",
            "username": NIFI_USER,
            "password": NIFI_PASSWORD,
            "is_global": False,
        },
    )
    nodes = lab.add_cluster(
        name, members=2, flow=queue_flow(calm=1), users={NIFI_USER: NIFI_PASSWORD}
    )
    ids = [
        await created(
            team.alice,
            "/api/nifi/instances",
            {
                "name": node.name,
                "url": node.url,
                "auth_mode": "username_password",
                "credential_id": credential,
                "connect_timeout": 2,
                "read_timeout": 5,
            },
        )
        for node in nodes
    ]
    return ids, nodes


def _requests(nodes: list[LabInstance]) -> int:
    return sum(node.request_count for node in nodes)


async def test_bob_cannot_use_alices_nifi_instances(
    services: Services, lab: NifiLab, nifi_team: Team
) -> None:
    team = nifi_team
    (first, second), nodes = await _alice_instances(team, lab, "alice-a")
    members = [{"instance_id": first, "is_primary": True}]
    cluster = await created(
        team.alice, "/api/nifi/clusters", {"name": "alice's", "members": members}
    )

    taken = await team.bob.post(
        "/api/nifi/clusters",
        json={"name": "bob's", "members": [{"instance_id": second, "is_primary": True}]},
    )
    assert refusal(taken) == (403, [["body", "members", 0, "instance_id"]])
    joined = await team.bob.patch(
        f"/api/nifi/clusters/{cluster}",
        json={"members": [*members, {"instance_id": second, "is_primary": False}]},
    )
    assert refusal(joined) == (
        403,
        [["body", "members", 0, "instance_id"], ["body", "members", 1, "instance_id"]],
    )
    runs: list[tuple[str, dict[str, Any], list[Any]]] = [
        ("check_queues", {"cluster_ids": [cluster]}, ["parameters", "cluster_ids", 0]),
        ("check_queues", {}, ["parameters", "cluster_ids"]),
        (
            "check_process_group",
            {"cluster_id": cluster, "process_group_id": "root"},
            ["parameters", "cluster_id"],
        ),
    ]
    for job_type, parameters, loc in runs:
        run = await team.bob.post(
            "/api/job-runs", json={"job_type": job_type, "parameters": parameters}
        )
        assert refusal(run) == (403, [loc])
    tested = await team.bob.post(f"/api/nifi/instances/{first}/test")
    assert refusal(tested) == (403, [["path", "instance_id"]])
    moved = await team.bob.patch(f"/api/nifi/instances/{first}", json={"url": "http://127.0.0.1:9"})
    assert refusal(moved) == (403, [["body", "url"]])
    await drain(services.settings)
    assert _requests(nodes) == 0

    # Alice checks her cluster with her login.
    mine = await created(
        team.alice,
        "/api/job-runs",
        {"job_type": "check_queues", "parameters": {"cluster_ids": [cluster]}},
    )
    await drain(services.settings)
    run = (await team.alice.get(f"/api/job-runs/{mine}")).json()
    assert (run["status"], run["outcome"], run["private_to"]) == ("completed", "ok", "alice")
    assert nodes[0].login_count == 1


async def test_a_cluster_gaining_alices_instance_after_bob_scheduled_it_fails_his_run(
    services: Services, lab: NifiLab, nifi_team: Team
) -> None:
    team = nifi_team
    shared_node = lab.add_instance("shared-b", flow=queue_flow(calm=1))
    shared = await created(
        team.admin,
        "/api/nifi/instances",
        {"name": "shared-b", "url": shared_node.url, "connect_timeout": 2, "read_timeout": 5},
    )
    cluster = await created(
        team.admin,
        "/api/nifi/clusters",
        {"name": "shared", "members": [{"instance_id": shared, "is_primary": True}]},
    )
    template = await created(
        team.bob,
        "/api/job-templates",
        {"name": "bob's backlog", "job_type": "check_queues", "config": {"cluster_ids": [cluster]}},
    )
    schedule = await created(
        team.bob,
        "/api/job-schedules",
        {
            "job_identifier": "bob's backlog",
            "template_id": template,
            "is_global": False,
            "schedule_type": "interval",
            "interval_minutes": 60,
        },
    )
    # Later, alice adds her instance to the shared cluster (she may use both members).
    (mine, _), nodes = await _alice_instances(team, lab, "alice-b")
    members = [
        {"instance_id": shared, "is_primary": True},
        {"instance_id": mine, "is_primary": False},
    ]
    joined = await team.alice.patch(f"/api/nifi/clusters/{cluster}", json={"members": members})
    assert joined.status_code == 200, joined.text

    await fire_schedule(services, services.settings, schedule)
    await drain(services.settings)
    async with services.sessions() as session:
        run = (await session.scalars(select(JobRun).where(JobRun.schedule_id == schedule))).one()
    assert run.status == RunStatus.FAILED
    assert run.error == (
        "refused before using anything: runs as bob; NiFi cluster "
        f"{cluster} holds a credential bob may not use (parameters.cluster_ids.0)"
    )
    # Nothing was asked of either member.
    assert (_requests(nodes), shared_node.request_count) == (0, 0)

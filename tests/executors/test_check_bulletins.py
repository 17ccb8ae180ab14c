"""``check_bulletins`` end to end: bulletins of a schedule's runs appear once, filtered
by level, source and group, per node even when a node restarts its numbering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from executors.services import Services
from lab.nifi import LabFlow, NifiLab, NodeState
from service.db.nifi_models import NifiBulletinCursor
from tests.executors.nifi_fixtures import RegisteredCluster, register_cluster, run_job
from tests.workers import drain

MESSAGE_RUN = "/api/job-runs/{}"
_SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


async def bulletin_schedule(
    client: httpx.AsyncClient, cluster: RegisteredCluster, **config: Any
) -> int:
    template = await client.post(
        "/api/job-templates",
        json={
            "name": f"bulletins of {cluster.name}",
            "job_type": "check_bulletins",
            "is_global": True,
            "config": {"cluster_ids": [cluster.id], **config},
        },
    )
    assert template.status_code == 201, template.text
    schedule = await client.post(
        "/api/job-schedules",
        json={
            "job_identifier": f"bulletins {cluster.name}",
            "template_id": template.json()["id"],
            "schedule_type": "interval",
            "interval_minutes": 5,
        },
    )
    assert schedule.status_code == 201, schedule.text
    schedule_id: int = schedule.json()["id"]
    return schedule_id


async def fire(client: httpx.AsyncClient, services: Services, schedule_id: int) -> dict[str, Any]:
    created = await client.post(f"/api/job-schedules/{schedule_id}/run")
    assert created.status_code == 202, created.text
    await drain(services.settings)
    run: dict[str, Any] = (await client.get(MESSAGE_RUN.format(created.json()["id"]))).json()
    assert run["status"] == "completed", run
    return run


def messages(run: dict[str, Any]) -> list[str]:
    return [b["message"] for c in run["result"]["clusters"] for b in c["bulletins"]]


async def test_bulletins_of_a_schedule_appear_once(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow(), members=2)
    first, second = cluster.nodes
    schedule_id = await bulletin_schedule(client, cluster)
    first.bulletins.post(level="ERROR", message="disk full", source_name="PutFile")
    second.bulletins.post(level="WARNING", message="slow", source_name="InvokeHTTP")
    second.bulletins.post(level="INFO", message="started", source_name="InvokeHTTP")

    opening = await fire(client, services, schedule_id)
    assert opening["outcome"] == "critical"
    assert sorted(messages(opening)) == ["disk full", "slow"]  # INFO is below WARNING
    [report] = opening["result"]["clusters"]
    assert report["first_look"] is True
    assert report["new_bulletins"] == 3
    assert report["levels"] == {"DEBUG": 0, "INFO": 0, "WARNING": 1, "ERROR": 1}
    assert {b["node"] for b in report["bulletins"]} == {first.name, second.name}
    assert opening["summary"] == "1 cluster(s): 2 new bulletin(s) (1 WARNING, 1 ERROR)"

    quiet = await fire(client, services, schedule_id)
    assert (quiet["outcome"], messages(quiet)) == ("ok", [])
    assert quiet["result"]["clusters"][0]["first_look"] is False

    # Both nodes number from 0: each node's own numbering decides what is new.
    first.bulletins.post(level="WARNING", message="retrying", source_name="PutFile")
    later = await fire(client, services, schedule_id)
    assert (later["outcome"], messages(later)) == ("warning", ["retrying"])

    # A restarted node numbers from 0 again: its bulletins are new all the same.
    second.bulletins.restart()
    second.bulletins.post(level="ERROR", message="after restart", source_name="InvokeHTTP")
    restarted = await fire(client, services, schedule_id)
    assert messages(restarted) == ["after restart"]

    # Ad-hoc runs have no schedule: they report what the board holds.
    adhoc = await run_job(client, services, "check_bulletins", {"cluster_ids": [cluster.id]})
    assert sorted(messages(adhoc)) == ["after restart", "disk full", "retrying"]
    assert adhoc["result"]["since"] == "board"


async def test_filters_by_level_source_and_group(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow())
    node = cluster.nodes[0]
    node.bulletins.post(level="ERROR", message="a", source_name="PutSFTP", group_id="ingest")
    node.bulletins.post(level="ERROR", message="b", source_name="PutSFTP", group_id="egress")
    node.bulletins.post(level="ERROR", message="c", source_name="GetSFTP", group_id="ingest")
    node.bulletins.post(level="DEBUG", message="d", source_name="PutSFTP", group_id="ingest")
    parameters = {
        "cluster_ids": [cluster.id],
        "source_name": "^Put",
        "group_ids": ["ingest"],
        "min_level": "debug",
    }
    run = await run_job(client, services, "check_bulletins", parameters)
    assert sorted(messages(run)) == ["a", "d"]
    assert run["result"]["min_level"] == "DEBUG"


async def test_a_long_gap_says_bulletins_may_have_been_missed(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow())
    schedule_id = await bulletin_schedule(client, cluster)
    await fire(client, services, schedule_id)
    async with services.sessions.begin() as session:
        await session.execute(
            update(NifiBulletinCursor)
            .where(NifiBulletinCursor.schedule_id == schedule_id)
            .values(updated_at=NifiBulletinCursor.updated_at - 600 * _SECOND)
        )
    run = await fire(client, services, schedule_id)
    assert run["result"]["clusters"][0]["may_have_missed"] is True


async def test_an_unreachable_or_disconnected_cluster_is_critical(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow())
    cluster.nodes[0].state = NodeState.DISCONNECTED
    cluster.nodes[0].bulletins.post(level="INFO", message="only mine")
    run = await run_job(client, services, "check_bulletins", {"cluster_ids": [cluster.id]})
    assert run["outcome"] == "critical"
    [report] = run["result"]["clusters"]
    assert report["bulletins"] == []
    assert "not connected to its cluster" in report["error"]
    assert run["summary"].endswith("1 cluster(s) not read")


async def test_bad_filters_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    for parameters, field in (
        ({"source_name": "(unclosed"}, "source_name"),
        ({"min_level": "LOUD"}, "min_level"),
        ({"group_ids": []}, "group_ids"),
    ):
        response = await client.post(
            "/api/job-runs", json={"job_type": "check_bulletins", "parameters": parameters}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["loc"][-1] == field

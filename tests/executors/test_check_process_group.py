"""``check_process_group`` end to end: expected statuses against the lab's counters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from executors.services import Services
from lab.nifi import LabFlow, NifiLab
from tests.executors.nifi_fixtures import (
    register_cluster,
    run_job,
    run_queued_job,
    targets_by_name,
)
from tests.workers import drain


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


def pipeline_flow() -> LabFlow:
    """``Pipeline`` with two running children; ``Archive`` below ``Load`` is stopped."""
    flow = LabFlow(seed=11)
    pipeline = flow.add_group("Pipeline", group_id="pg-pipeline", running=2)
    flow.add_group("Extract", pipeline.id, group_id="pg-extract", running=4)
    load = flow.add_group("Load", pipeline.id, group_id="pg-load", running=3)
    flow.add_group("Archive", load.id, group_id="pg-archive", stopped=2)
    return flow


async def test_running_group_with_running_children_passes(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    flow = pipeline_flow()
    flow.set_counts("pg-archive", stopped=0, running=1)
    cluster = await register_cluster(client, lab, flow, members=2)

    run = await run_job(
        client,
        services,
        "check_process_group",
        {"cluster_id": cluster.id, "process_group_id": "pg-pipeline"},
    )

    assert (run["status"], run["outcome"]) == ("completed", "ok")
    result = run["result"]
    assert result["passed"] is True
    assert result["process_group_name"] == "Pipeline"
    assert result["expected_status"] == "Running"
    assert result["answered_by"] == cluster.instance_names[0]
    assert result["counters"]["running_count"] == 10
    assert [child["name"] for child in result["children"]] == ["Extract", "Load"]
    assert result["children_failed"] == 0
    (row,) = run["target_rows"]["items"]
    assert (row["key"], row["status"], row["outcome"]) == (str(cluster.id), "succeeded", "ok")
    assert row["result"] == result
    assert "passed" in run["summary"]


async def test_stopped_descendant_is_a_violation(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, pipeline_flow())

    direct = await run_job(
        client,
        services,
        "check_progress_group",
        {"cluster_id": cluster.id, "process_group_id": "pg-pipeline"},
    )
    assert direct["job_type"] == "check_process_group"
    assert direct["outcome"] == "critical"
    assert direct["result"]["violations"] == ["stopped_count"]
    children = {child["name"]: child for child in direct["result"]["children"]}
    assert children["Extract"]["passed"] is True
    assert children["Load"]["violations"] == ["stopped_count"]

    recursive = await run_job(
        client,
        services,
        "check_process_group",
        {
            "cluster_id": cluster.id,
            "process_group_id": "pg-load",
            "process_group_path": "/NiFi Flow/Pipeline/Load",
            "recursive": True,
            "expected_status": "running",
        },
    )
    assert recursive["outcome"] == "critical"
    (archive,) = recursive["result"]["children"]
    assert archive["path"] == "/NiFi Flow/Pipeline/Load/Archive"
    assert archive["counters"]["stopped_count"] == 2
    assert archive["violations"] == ["stopped_count"]


async def test_unknown_group_is_critical_with_the_error(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, pipeline_flow())
    run = await run_job(
        client,
        services,
        "check_process_group",
        {"cluster_id": cluster.id, "process_group_id": "no-such-group"},
    )
    assert (run["status"], run["outcome"]) == ("completed", "critical")
    assert run["result"]["passed"] is False
    assert "404" in run["result"]["error"]
    row = targets_by_name(run)[cluster.name]
    assert (row["status"], row["outcome"]) == ("failed", "critical")
    assert "404" in row["error"]


async def test_bad_configuration_is_refused_when_saved(
    client: httpx.AsyncClient, services: Services
) -> None:
    unknown_status = await client.post(
        "/api/job-runs",
        json={
            "job_type": "check_process_group",
            "parameters": {"cluster_id": 1, "process_group_id": "pg", "expected_status": "Paused"},
        },
    )
    assert unknown_status.status_code == 422
    (detail,) = unknown_status.json()["error"]["details"]
    assert detail["loc"] == ["parameters", "expected_status"]
    missing = await client.post(
        "/api/job-runs", json={"job_type": "check_process_group", "parameters": {}}
    )
    assert {tuple(d["loc"]) for d in missing.json()["error"]["details"]} == {
        ("parameters", "cluster_id"),
        ("parameters", "process_group_id"),
    }
    parameters = {"cluster_id": 424242, "process_group_id": "pg"}
    unknown_cluster = await client.post(
        "/api/job-runs", json={"job_type": "check_process_group", "parameters": parameters}
    )
    assert unknown_cluster.json()["error"]["details"] == [
        {"loc": ["parameters", "cluster_id"], "msg": "NiFi cluster 424242 does not exist"}
    ]
    gone = await run_queued_job(client, services, "check_process_group", parameters)
    assert gone["status"] == "failed"
    assert "NiFi cluster 424242 does not exist" in gone["error"]


async def test_templates_take_the_origin_names_and_refuse_an_unknown_status(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, pipeline_flow())
    origin_config = {
        "nifi_cluster_id": cluster.id,
        "check_progress_group_process_group_id": "pg-pipeline",
        "check_progress_group_check_children": False,
        "check_progress_group_expected_status": "Paused",
    }
    refused = await client.post(
        "/api/job-templates",
        json={"name": "pipeline", "job_type": "check_progress_group", "config": origin_config},
    )
    assert refused.status_code == 422
    (detail,) = refused.json()["error"]["details"]
    assert detail["loc"] == ["config", "expected_status"]

    origin_config["check_progress_group_expected_status"] = "Running"
    saved = await client.post(
        "/api/job-templates",
        json={"name": "pipeline", "job_type": "check_progress_group", "config": origin_config},
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["job_type"] == "check_process_group"
    assert saved.json()["config"]["process_group_id"] == "pg-pipeline"

    queued = await client.post(
        f"/api/job-templates/{saved.json()['id']}/run",
        json={"parameters": {"expected_status": "Stopped"}},
    )
    assert queued.status_code == 202, queued.text
    await drain(services.settings)
    run = (await client.get(f"/api/job-runs/{queued.json()['id']}")).json()
    assert (run["status"], run["outcome"]) == ("completed", "critical")
    assert run["result"]["expected_status"] == "Stopped"
    assert run["result"]["violations"] == ["running_count"]
    assert "children" not in run["result"]

"""``check_queues`` end to end: API → worker → lab NiFi clusters → run and target rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from executors.services import Services
from lab.nifi import FailureMode, NifiLab
from tests.executors.nifi_fixtures import (
    queue_flow,
    register_cluster,
    run_job,
    run_queued_job,
    targets_by_name,
    username_password_credential,
)
from tests.workers import running_worker, wait_for_run


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


async def test_each_cluster_gets_its_colour_and_the_worst_wins(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    green = await register_cluster(client, lab, queue_flow(calm=5, idle=0))
    yellow = await register_cluster(client, lab, queue_flow(busy=5000, calm=3))
    red = await register_cluster(client, lab, queue_flow(stuck=10000, busy=1000, calm=1))

    run = await run_job(client, services, "check_queues", {})

    assert (run["status"], run["outcome"]) == ("completed", "critical")
    assert run["summary"] == "3 cluster(s): 1 green, 1 yellow, 1 red"
    result = run["result"]
    assert result["overall_status"] == "red"
    assert result["summary"] == {"green": 1, "yellow": 1, "red": 1}
    assert result["thresholds"] == {
        "mode": "count",
        "count_yellow": 1000,
        "count_red": 10000,
        "bytes_yellow_mb": 10.0,
        "bytes_red_mb": 100.0,
    }
    clusters = {c["cluster_name"]: c for c in result["clusters"]}
    assert [
        c["status"] for c in (clusters[green.name], clusters[yellow.name], clusters[red.name])
    ] == [
        "green",
        "yellow",
        "red",
    ]
    # Only yellow and red connections are kept, worst first, with where they sit.
    assert clusters[green.name]["connections"] == []
    stuck, busy = clusters[red.name]["connections"]
    assert (stuck["name"], stuck["status"], stuck["flow_files_queued"]) == ("stuck", "red", 10000)
    assert (busy["name"], busy["status"]) == ("busy", "yellow")
    assert stuck["group_path"] == "/NiFi Flow/Ingest"
    assert (stuck["source"], stuck["destination"]) == ("stuck-source", "stuck-sink")
    assert clusters[red.name]["connection_summary"] == {"green": 1, "yellow": 1, "red": 1}
    assert clusters[red.name]["answered_by"] == red.instance_names[0]

    rows = targets_by_name(run)
    assert {name: (row["status"], row["outcome"]) for name, row in rows.items()} == {
        green.name: ("succeeded", "ok"),
        yellow.name: ("succeeded", "warning"),
        red.name: ("succeeded", "critical"),
    }
    assert rows[red.name]["key"] == str(red.id)
    assert rows[red.name]["result"] == clusters[red.name]


async def test_named_clusters_and_zero_thresholds_are_honoured(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    chosen = await register_cluster(client, lab, queue_flow(empty=0, one=1))
    await register_cluster(client, lab, queue_flow(other=50000))

    run = await run_job(
        client,
        services,
        "check_queues",
        {
            "cluster_ids": [chosen.id],
            "mode": "both",
            "count_yellow": 0,
            "count_red": 1,
            "include_all_connections": True,
        },
    )

    assert run["outcome"] == "critical"
    (cluster,) = run["result"]["clusters"]
    assert cluster["cluster_id"] == str(chosen.id)
    by_name = {c["name"]: (c["count_status"], c["bytes_status"]) for c in cluster["connections"]}
    assert by_name == {"empty": ("yellow", "green"), "one": ("red", "green")}
    assert [row["name"] for row in run["target_rows"]["items"]] == [chosen.name]


async def test_one_cluster_down_leaves_the_others_alone(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    healthy = await register_cluster(client, lab, queue_flow(calm=1))
    down = await register_cluster(client, lab, queue_flow(calm=1), members=2)
    for node in down.nodes:
        node.fail(FailureMode.DOWN)
    try:
        run = await run_job(
            client, services, "check_queues", {"cluster_ids": [healthy.id, down.id]}
        )
    finally:
        for node in down.nodes:
            node.recover()

    assert (run["status"], run["outcome"]) == ("completed", "critical")
    rows = targets_by_name(run)
    assert (rows[healthy.name]["status"], rows[healthy.name]["outcome"]) == ("succeeded", "ok")
    failed = rows[down.name]
    assert (failed["status"], failed["outcome"]) == ("failed", "critical")
    assert "no member of cluster" in failed["error"]
    assert "503" in failed["error"]
    clusters = {c["cluster_name"]: c for c in run["result"]["clusters"]}
    assert clusters[healthy.name]["status"] == "green"
    assert clusters[down.name]["status"] == "red"
    assert clusters[down.name]["unavailable_members"] == down.instance_names
    assert run["result"]["summary"] == {"green": 1, "yellow": 0, "red": 1}


async def test_primary_down_another_member_answers(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, queue_flow(busy=2000), members=3)
    cluster.nodes[0].fail(FailureMode.DOWN)
    try:
        run = await run_job(client, services, "check_queues", {"cluster_ids": [cluster.id]})
    finally:
        cluster.nodes[0].recover()

    assert (run["status"], run["outcome"]) == ("completed", "warning")
    (result,) = run["result"]["clusters"]
    assert result["answered_by"] == cluster.instance_names[1]
    assert result["unavailable_members"] == [cluster.instance_names[0]]
    assert result["status"] == "yellow"
    assert targets_by_name(run)[cluster.name]["status"] == "succeeded"


async def test_unknown_cluster_fails_the_run_and_empty_selection_is_refused(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    known = await register_cluster(client, lab, queue_flow(calm=1))
    ids = [known.id, 999, "x", 2**40]
    refused = await client.post(
        "/api/job-runs", json={"job_type": "check_queues", "parameters": {"cluster_ids": ids}}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {
            "loc": ["parameters", "cluster_ids", index],
            "msg": f"NiFi cluster {ids[index]} does not exist",
        }
        for index in (1, 2, 3)
    ]
    # A cluster gone after the run was queued fails the run before anything is checked.
    run = await run_queued_job(client, services, "check_queues", {"cluster_ids": ids})
    assert run["status"] == "failed"
    assert "NiFi cluster 999 does not exist (parameters.cluster_ids.1)" in run["error"]
    assert run["target_rows"]["items"] == []

    empty = await client.post(
        "/api/job-runs", json={"job_type": "check_queues", "parameters": {"cluster_ids": []}}
    )
    assert empty.status_code == 422
    assert empty.json()["error"]["details"][0]["loc"] == ["parameters", "cluster_ids"]
    inverted = await client.post(
        "/api/job-runs",
        json={"job_type": "check_queues", "parameters": {"count_yellow": 10, "count_red": 5}},
    )
    assert inverted.status_code == 422


async def test_cancel_mid_run_keeps_the_finished_clusters(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    fast = [await register_cluster(client, lab, queue_flow(calm=1)) for _ in range(2)]
    slow = await register_cluster(client, lab, queue_flow(calm=1), latency=30)
    created = await client.post(
        "/api/job-runs",
        json={"job_type": "check_queues", "parameters": {"concurrency": 3}},
    )
    run_id = created.json()["id"]
    async with running_worker(services.settings):
        await wait_for_run(services.sessions, run_id, min_progress=2)
        cancelled = await client.post(f"/api/job-runs/{run_id}/cancel")
        assert cancelled.status_code == 202
        await wait_for_run(services.sessions, run_id)

    run = (await client.get(f"/api/job-runs/{run_id}")).json()
    assert run["status"] == "cancelled"
    rows = targets_by_name(run)
    for cluster in fast:
        assert (rows[cluster.name]["status"], rows[cluster.name]["outcome"]) == ("succeeded", "ok")
        assert rows[cluster.name]["result"]["status"] == "green"
    assert rows[slow.name]["status"] == "cancelled"
    kept = {c["cluster_name"] for c in run["result"]["clusters"]}
    assert kept == {cluster.name for cluster in fast}
    assert run["result"]["overall_status"] == "green"
    assert run["result"]["summary"] == {"green": 2, "yellow": 0, "red": 0}


async def test_clusters_that_cannot_be_set_up_are_red_with_the_reason(
    client: httpx.AsyncClient, services: Services, lab: NifiLab, tmp_path: Path
) -> None:
    healthy = await register_cluster(client, lab, queue_flow(calm=1))
    empty = await client.post("/api/nifi/clusters", json={"name": "no-members"})
    instance = await client.post(
        "/api/nifi/instances",
        json={
            "name": "missing-cert",
            "url": "https://127.0.0.1:9/nifi",
            "auth_mode": "client_certificate",
            "client_cert_path": str(tmp_path / "missing.pem"),
        },
    )
    broken = await client.post(
        "/api/nifi/clusters",
        json={
            "name": "broken-tls",
            "members": [{"instance_id": instance.json()["id"], "is_primary": True}],
        },
    )

    run = await run_job(client, services, "check_queues", {})

    rows = targets_by_name(run)
    assert (rows[healthy.name]["status"], rows[healthy.name]["outcome"]) == ("succeeded", "ok")
    assert (rows["no-members"]["status"], rows["no-members"]["outcome"]) == ("failed", "critical")
    assert rows["no-members"]["error"] == "NiFi cluster 'no-members' has no instances"
    assert rows["broken-tls"]["outcome"] == "critical"
    assert rows["broken-tls"]["error"].startswith("TLS set-up failed")
    assert rows["broken-tls"]["key"] == str(broken.json()["id"])
    assert rows["no-members"]["key"] == str(empty.json()["id"])
    assert run["result"]["summary"] == {"green": 1, "yellow": 0, "red": 2}


async def test_all_clusters_of_an_empty_inventory_is_not_ok(
    client: httpx.AsyncClient, services: Services
) -> None:
    run = await run_job(client, services, "check_queues", {})
    assert (run["status"], run["outcome"]) == ("completed", "unknown")
    assert run["summary"] == "no NiFi clusters to check"
    assert run["result"]["clusters"] == []


async def test_a_worker_reuses_its_nifi_client_and_token_across_runs(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    credential = await username_password_credential(client)
    cluster = await register_cluster(client, lab, queue_flow(calm=1), credential_id=credential)
    async with running_worker(services.settings):
        for _ in range(3):
            created = await client.post(
                "/api/job-runs",
                json={"job_type": "check_queues", "parameters": {"cluster_ids": [cluster.id]}},
            )
            run = await wait_for_run(services.sessions, created.json()["id"])
            assert (run.status, run.outcome) == ("completed", "ok")
    assert cluster.nodes[0].login_count == 1
    # One login, then per run one status request and the cluster summary beside it.
    assert cluster.nodes[0].request_count == 7

"""Clusters as they behave, end to end (API → worker → lab): node states in
``check_cluster`` and ``check_queues``, a restarting primary, back pressure per node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from executors.services import Services
from lab.nifi import LabFlow, NifiLab, NodeState
from tests.executors.nifi_fixtures import queue_flow, register_cluster, run_job, targets_by_name
from tests.workers import running_worker, wait_for_run

MB = 1024 * 1024


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


def only_cluster(run: dict[str, Any]) -> dict[str, Any]:
    [cluster] = run["result"]["clusters"]
    return dict(cluster)


async def test_a_disconnected_node_makes_check_cluster_critical(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    degraded = await register_cluster(client, lab, queue_flow(calm=3), members=3)
    healthy = await register_cluster(client, lab, queue_flow(calm=1), members=2)
    ok = await run_job(client, services, "check_cluster", {})
    assert (ok["status"], ok["outcome"]) == ("completed", "ok")
    assert ok["summary"] == "2 cluster(s): 2 ok, 0 warning, 0 critical"

    out = degraded.nodes[2]
    out.state = NodeState.DISCONNECTED
    run = await run_job(client, services, "check_cluster", {})
    assert (run["status"], run["outcome"]) == ("completed", "critical")
    rows = targets_by_name(run)
    assert rows[healthy.name]["outcome"] == "ok"
    row = rows[degraded.name]
    assert (row["status"], row["outcome"]) == ("succeeded", "critical")
    result = row["result"]
    assert (result["connected_nodes"], result["total_nodes"]) == (2, 3)
    states = {node["address"]: node["status"] for node in result["nodes"]}
    assert states == {
        degraded.nodes[0].name: "CONNECTED",
        degraded.nodes[1].name: "CONNECTED",
        out.name: "DISCONNECTED",
    }
    connected = next(n for n in result["nodes"] if n["address"] == degraded.nodes[0].name)
    assert connected["heartbeat_age_seconds"] is not None
    assert connected["heartbeat_age_seconds"] < 30
    assert connected["active_thread_count"] == 2
    assert connected["flow_files_queued"] == 1  # its share of the 3 queued flow files
    assert result["problems"] == [f"node {out.name}:{lab.port} is DISCONNECTED"]
    assert f"node {out.name}:{lab.port} is DISCONNECTED" in run["summary"]


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (NodeState.CONNECTING, "warning"),
        (NodeState.OFFLOADING, "critical"),
        (NodeState.OFFLOADED, "critical"),
        (NodeState.DISCONNECTING, "critical"),
    ],
)
async def test_node_states_and_their_outcomes(
    client: httpx.AsyncClient,
    services: Services,
    lab: NifiLab,
    state: NodeState,
    outcome: str,
) -> None:
    cluster = await register_cluster(client, lab, LabFlow(), members=2)
    cluster.nodes[1].state = state
    run = await run_job(client, services, "check_cluster", {"cluster_ids": [cluster.id]})
    assert run["outcome"] == outcome
    assert only_cluster(run)["problems"] == [f"node {cluster.nodes[1].name}:{lab.port} is {state}"]


async def test_a_stale_heartbeat_is_a_warning(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow(), members=2)
    cluster.nodes[1].heartbeat_age = 120
    run = await run_job(
        client,
        services,
        "check_cluster",
        {"cluster_ids": [cluster.id], "max_heartbeat_age": 60},
    )
    assert run["outcome"] == "warning"
    [problem] = only_cluster(run)["problems"]
    assert problem.startswith(f"node {cluster.nodes[1].name}:{lab.port} last heartbeat 12")


async def test_no_connected_member_is_critical_with_every_reason(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, LabFlow(), members=2)
    cluster.nodes[0].state = NodeState.DISCONNECTED
    cluster.nodes[1].initializing = True
    run = await run_job(client, services, "check_cluster", {"cluster_ids": [cluster.id]})
    assert (run["status"], run["outcome"]) == ("completed", "critical")
    result = only_cluster(run)
    assert result["status"] == "critical"
    reasons = {item["member"]: item["reason"] for item in result["skipped"]}
    assert "not connected to its cluster" in reasons[cluster.instance_names[0]]
    assert "HTTP 409" in reasons[cluster.instance_names[1]]
    assert "no member of cluster" in result["error"]


async def test_check_queues_names_the_node_and_never_reports_its_local_data(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    flow = queue_flow(stuck=20000)
    cluster = await register_cluster(client, lab, flow, members=3)
    primary = cluster.nodes[0]
    # Every stuck flow file sits on the primary; then the primary drops out.
    [stuck] = flow.connections
    flow.set_node_queue(stuck, primary.name, flow_files=20000)
    primary.state = NodeState.DISCONNECTED

    run = await run_job(client, services, "check_queues", {"cluster_ids": [cluster.id]})

    result = only_cluster(run)
    # The answer is a connected member's: the disconnected primary's local red queue is
    # not the cluster's; the cluster is red for the node that is out, which is named.
    assert result["answered_by"] == cluster.instance_names[1]
    assert result["queue_status"] == "green"
    assert result["connections"] == []
    assert result["status"] == "red"
    assert result["cluster"]["problems"] == [f"node {primary.name}:{lab.port} is DISCONNECTED"]
    assert result["cluster"]["connected_nodes"] == 2
    [skipped] = result["skipped"]
    assert skipped["member"] == cluster.instance_names[0]
    assert skipped["tried"] is True
    assert "not connected to its cluster" in skipped["reason"]
    assert run["outcome"] == "critical"
    assert targets_by_name(run)[cluster.name]["result"] == result


async def test_a_restarting_primary_fails_over_and_is_then_skipped(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, queue_flow(calm=1), members=2)
    primary = cluster.nodes[0]
    primary.initializing = True
    parameters = {"cluster_ids": [cluster.id]}
    async with running_worker(services.settings):
        results = []
        for _ in range(2):
            created = await client.post(
                "/api/job-runs", json={"job_type": "check_queues", "parameters": parameters}
            )
            run = await wait_for_run(services.sessions, created.json()["id"])
            results.append(run)
    first, second = (run.result["clusters"][0] for run in results if run.result)
    assert [run.outcome for run in results] == ["ok", "ok"]
    assert first["answered_by"] == second["answered_by"] == cluster.instance_names[1]
    [tried] = first["skipped"]
    assert tried["tried"] is True
    assert "HTTP 409: The Flow Controller is initializing the Data Flow." in tried["reason"]
    # The worker remembers: the next run does not ask the restarting node at all.
    [backed_off] = second["skipped"]
    assert backed_off["tried"] is False
    assert backed_off["reason"].startswith("backed off after: ")
    assert primary.request_count == 2  # status and summary of the first run, both 409


def skewed_flow() -> LabFlow:
    flow = LabFlow(seed=4)
    flow.add_connection("skewed", connection_id="skewed")
    flow.add_connection("even", flow_files=3000, connection_id="even")
    return flow


async def test_percent_per_node_picks_and_names_the_worst_node(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    flow = skewed_flow()
    cluster = await register_cluster(client, lab, flow, members=2)
    worst, calm = cluster.nodes
    flow.set_node_queue("skewed", worst.name, flow_files=9500)
    flow.set_node_queue("skewed", calm.name, flow_files=100)
    base = {"cluster_ids": [cluster.id], "mode": "percent"}

    per_node = only_cluster(
        await run_job(client, services, "check_queues", base | {"scope": "node"})
    )
    assert per_node["status"] == "red"
    assert per_node["scope"] == "node"
    assert per_node["worst_node"] == f"{worst.name}:{lab.port}"
    skewed = next(c for c in per_node["connections"] if c["id"] == "skewed")
    assert (skewed["node"], skewed["percent_use_count"], skewed["percent_status"]) == (
        f"{worst.name}:{lab.port}",
        95,
        "red",
    )
    nodes = {node["node"]: node["status"] for node in per_node["nodes"]}
    assert nodes == {f"{worst.name}:{lab.port}": "red", f"{calm.name}:{lab.port}": "green"}

    merged = await run_job(client, services, "check_queues", base | {"percent_red": 96})
    assert merged["result"]["thresholds"]["percent_red"] == 96
    cluster_view = only_cluster(merged)
    # NiFi's merged percentage is the fullest node's, without saying which.
    assert cluster_view["status"] == "yellow"
    assert "worst_node" not in cluster_view
    assert cluster_view["connections"][0]["percent_use_count"] == 95


async def test_counts_per_node_are_not_the_cluster_sums(
    client: httpx.AsyncClient, services: Services, lab: NifiLab
) -> None:
    cluster = await register_cluster(client, lab, skewed_flow(), members=2)
    thresholds = {"cluster_ids": [cluster.id], "count_yellow": 2000, "count_red": 5000}
    summed = only_cluster(await run_job(client, services, "check_queues", thresholds))
    assert summed["status"] == "yellow"  # 3,000 summed over both nodes
    per_node = only_cluster(
        await run_job(client, services, "check_queues", thresholds | {"scope": "node"})
    )
    assert per_node["status"] == "green"  # 1,500 on each node
    assert per_node["worst_node"] is None

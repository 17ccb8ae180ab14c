"""The NiFi lab as a cluster over real sockets: node states, summary and node list,
per-node snapshots, back-pressure use, bulletins, the OIDC provider's requirements,
the control endpoints and the forward proxy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lab.http_proxy import HttpProxy
from lab.nifi import LabFlow, NifiLab, NodeState

MB = 1024 * 1024


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
        yield client


def two_queues() -> LabFlow:
    flow = LabFlow(seed=9)
    flow.add_connection("even", flow_files=3000, bytes=30 * MB, connection_id="even")
    flow.add_connection("skewed", flow_files=0, connection_id="skewed")
    return flow


def snapshots(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["id"]: item["connectionStatusSnapshot"] for item in status["connectionStatusSnapshots"]
    }


async def get(http: httpx.AsyncClient, url: str) -> Any:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    return response.json()


async def test_summary_and_nodes_follow_node_states(lab: NifiLab, http: httpx.AsyncClient) -> None:
    first, second, third = lab.add_cluster("states", members=3)
    summary = (await get(http, f"{first.url}/flow/cluster/summary"))["clusterSummary"]
    assert summary == {
        "clustered": True,
        "connectedToCluster": True,
        "connectedNodeCount": 3,
        "totalNodeCount": 3,
        "connectedNodes": "3 / 3",
    }
    second.state = NodeState.DISCONNECTED
    third.state = NodeState.OFFLOADING
    summary = (await get(http, f"{first.url}/flow/cluster/summary"))["clusterSummary"]
    assert (summary["connectedNodeCount"], summary["totalNodeCount"]) == (1, 3)
    # The disconnected node does not know the cluster any more.
    own = (await get(http, f"{second.url}/flow/cluster/summary"))["clusterSummary"]
    assert (own["clustered"], own["connectedToCluster"], own["totalNodeCount"]) == (
        True,
        False,
        0,
    )
    nodes = (await get(http, f"{first.url}/controller/cluster"))["cluster"]["nodes"]
    assert [(n["address"], n["status"]) for n in nodes] == [
        (first.name, "CONNECTED"),
        (second.name, "DISCONNECTED"),
        (third.name, "OFFLOADING"),
    ]
    assert nodes[0]["roles"] == ["Primary Node", "Cluster Coordinator"]
    assert nodes[0]["heartbeat"].endswith(" UTC")
    assert "activeThreadCount" in nodes[0]
    assert "heartbeat" not in nodes[1]
    refused = await http.get(f"{second.url}/controller/cluster")
    assert (refused.status_code, refused.text) == (
        404,
        "Only a node connected to a cluster can process the request.",
    )
    standalone = lab.add_instance("alone")
    alone = (await get(http, f"{standalone.url}/flow/cluster/summary"))["clusterSummary"]
    assert (alone["clustered"], alone["connectedToCluster"]) == (False, False)


async def test_queues_merge_over_connected_nodes_and_nodewise_shows_each(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    flow = two_queues()
    first, second = lab.add_cluster("merge", members=2, flow=flow)
    flow.set_node_queue("skewed", first.name, flow_files=9500)
    flow.set_node_queue("skewed", second.name, flow_files=100)
    url = f"{first.url}/flow/process-groups/root/status?recursive=true&nodewise=true"
    status = (await get(http, url))["processGroupStatus"]
    merged = snapshots(status["aggregateSnapshot"])
    assert (merged["even"]["flowFilesQueued"], merged["even"]["percentUseCount"]) == (3000, 15)
    # Sums for the depth, the worst node for the use, as NiFi merges them.
    assert (merged["skewed"]["flowFilesQueued"], merged["skewed"]["percentUseCount"]) == (
        9600,
        95,
    )
    per_node = {n["address"]: snapshots(n["statusSnapshot"]) for n in status["nodeSnapshots"]}
    assert per_node[first.name]["skewed"]["percentUseCount"] == 95
    assert per_node[second.name]["skewed"]["percentUseCount"] == 1
    assert per_node[second.name]["even"]["flowFilesQueued"] == 1500
    # A disconnected node answers with its own share only.
    second.state = NodeState.DISCONNECTED
    local = await get(http, f"{second.url}/flow/process-groups/root/status?recursive=true")
    own = snapshots(local["processGroupStatus"]["aggregateSnapshot"])
    assert own["skewed"]["flowFilesQueued"] == 100
    assert "nodeSnapshots" not in local["processGroupStatus"]


async def test_no_back_pressure_threshold_means_no_percentage(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    flow = two_queues()
    flow.set_back_pressure("even", objects=0)
    node = lab.add_instance("no-threshold", flow=flow)
    status = await get(http, f"{node.url}/flow/process-groups/root/status?recursive=true")
    even = snapshots(status["processGroupStatus"]["aggregateSnapshot"])["even"]
    assert "percentUseCount" not in even
    assert even["percentUseBytes"] == 3  # 30 MB of 1 GB


async def test_an_initializing_node_answers_409(lab: NifiLab, http: httpx.AsyncClient) -> None:
    [node] = lab.add_cluster("init", members=1)
    node.initializing = True
    response = await http.get(f"{node.url}/flow/about")
    assert (response.status_code, response.text) == (
        409,
        "The Flow Controller is initializing the Data Flow.",
    )
    node.initializing = False
    node.state = NodeState.CONNECTING
    assert (await http.get(f"{node.url}/flow/about")).status_code == 409
    node.state = NodeState.CONNECTED
    assert (await http.get(f"{node.url}/flow/about")).status_code == 200


async def test_control_endpoints_switch_states_and_post_bulletins(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    first, second = lab.add_cluster("control", members=2)
    changed = await http.post(
        f"{lab.base_url}/lab/nodes/{second.name}", json={"state": "DISCONNECTED"}
    )
    assert changed.status_code == 200
    assert second.state is NodeState.DISCONNECTED
    assert (
        await http.post(f"{lab.base_url}/lab/nodes/{second.name}", json={"state": "ASLEEP"})
    ).status_code == 422
    assert (await http.post(f"{lab.base_url}/lab/nodes/nobody", json={})).status_code == 404
    await http.post(f"{lab.base_url}/lab/nodes/{first.name}", json={"initializing": True})
    assert first.initializing
    first.initializing = False
    second.state = NodeState.CONNECTED
    posted = await http.post(
        f"{lab.base_url}/lab/nodes/{second.name}/bulletins",
        json={"level": "ERROR", "message": "disk full", "source_name": "PutFile"},
    )
    assert posted.status_code == 201
    assert posted.json()["nodeAddress"] == second.name
    listed = (await get(http, f"{lab.base_url}/lab/nodes"))["nodes"]
    assert {n["name"]: n["state"] for n in listed}[second.name] == "CONNECTED"


async def test_bulletin_board_merges_nodes_and_filters(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    first, second = lab.add_cluster("board", members=2)
    first.bulletins.post(level="WARNING", message="slow", source_name="GetFile", group_id="g1")
    second.bulletins.post(level="ERROR", message="broken", source_name="PutSFTP", group_id="g2")
    second.bulletins.post(level="ERROR", message="old", timestamp=time.time() - 600)
    board = (await get(http, f"{first.url}/flow/bulletin-board"))["bulletinBoard"]
    found = [(b["nodeAddress"], b["bulletin"]["level"], b["id"]) for b in board["bulletins"]]
    # Each node numbers its own bulletins; the five-minute-old one is gone.
    assert found == [(first.name, "WARNING", 0), (second.name, "ERROR", 0)]
    only_put = await get(http, f"{first.url}/flow/bulletin-board?sourceName=^Put")
    assert [b["bulletin"]["message"] for b in only_put["bulletinBoard"]["bulletins"]] == ["broken"]
    in_group = await get(http, f"{first.url}/flow/bulletin-board?groupId=g1&limit=5")
    assert len(in_group["bulletinBoard"]["bulletins"]) == 1
    second.bulletins.restart()
    assert second.bulletins.post(level="INFO", message="up again").id == 0


async def test_oidc_scope_audience_and_moved_token_endpoint(
    lab: NifiLab, http: httpx.AsyncClient
) -> None:
    lab.add_oidc_client("strict", "s3cret", scope="api://nifi/.default", audience="nifi-api")
    discovery = (await get(http, lab.oidc_discovery_url))["token_endpoint"]
    base = {"grant_type": "client_credentials"}
    auth = ("strict", "s3cret")
    no_scope = await http.post(discovery, data=base, auth=auth)
    assert (no_scope.status_code, no_scope.json()["error"]) == (400, "invalid_scope")
    no_audience = await http.post(
        discovery, data=base | {"scope": "api://nifi/.default"}, auth=auth
    )
    assert no_audience.json()["error"] == "invalid_request"
    good = await http.post(
        discovery, data=base | {"scope": "api://nifi/.default", "audience": "nifi-api"}, auth=auth
    )
    assert good.status_code == 200
    lab.move_oidc_token_endpoint()
    assert (await http.post(discovery, data=base, auth=auth)).status_code == 404
    moved = (await get(http, lab.oidc_discovery_url))["token_endpoint"]
    assert moved != discovery


async def test_forward_proxy_tunnels_and_forwards(lab: NifiLab, http: httpx.AsyncClient) -> None:
    node = lab.add_instance("behind-proxy")
    async with (
        HttpProxy() as proxy,
        httpx.AsyncClient(proxy=proxy.url, trust_env=False, timeout=5) as proxied,
    ):
        response = await proxied.get(f"{node.url}/flow/about")
        login = await proxied.post(f"{node.url}/access/token", data={"username": "x"})
    assert response.status_code == 200
    assert login.status_code == 409  # forwarded with its body to a NiFi without logins
    assert proxy.requests == [
        f"GET {node.url}/flow/about",
        f"POST {node.url}/access/token",
    ]

"""Cluster health as pure functions: NiFi's node and summary shapes, heartbeat ages in
any zone NiFi prints, and the verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.nifi.health import (
    ClusterSummary,
    NodeStatus,
    heartbeat_age,
    parse_cluster,
    parse_cluster_summary,
)
from service.nifi.health_check import evaluate_health, judge_node
from service.nifi.queue_check import Colour, QueueMode, QueueThresholds, evaluate_connection
from service.nifi.status import ConnectionQueue

NOW = datetime(2026, 12, 8, 10, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("heartbeat", "generated", "age"),
    [
        ("12/08/2026 10:00:25 UTC", None, 5.0),
        ("12/08/2026 10:00:25 GMT", "ignored", 5.0),
        ("12/08/2026 11:00:20 +01:00", None, 10.0),
        ("12/08/2026 05:00:00 UTC-05:00", None, 30.0),
        # An abbreviation that does not say its offset: aged against `generated`.
        ("12/08/2026 11:00:25 CET", "11:00:31 CET", 6.0),
        ("12/07/2026 23:59:58 IST", "00:00:03 IST", 5.0),
        ("12/08/2026 11:00:25 CET", "10:00:31 UTC", None),
        ("12/08/2026 11:00:25 CET", None, None),
        ("yesterday", None, None),
        ("12/08/2026 25:00:00 UTC", None, None),
    ],
)
def test_heartbeat_age(heartbeat: str, generated: str | None, age: float | None) -> None:
    assert heartbeat_age(heartbeat, generated, NOW) == age


def test_cluster_entities_of_1x_and_2x() -> None:
    entity = {
        "cluster": {
            "generated": "10:00:30 UTC",
            "nodes": [
                {
                    "nodeId": "a",
                    "address": "nifi-1",
                    "apiPort": 8443,
                    "status": "CONNECTED",
                    "heartbeat": "12/08/2026 10:00:27 UTC",
                    "roles": ["Primary Node", "Cluster Coordinator"],
                    "activeThreadCount": 4,
                    "queued": "1,234 / 5.5 MB",
                },
                {
                    "nodeId": "b",
                    "address": "nifi-2",
                    "apiPort": 8443,
                    "status": "connected",
                    "queued": "9 / 0 bytes",
                    "flowFilesQueued": 10,
                    "flowFileBytes": 2048,
                },
                {"nodeId": "c", "address": "nifi-3", "status": "DISCONNECTED"},
            ],
        }
    }
    first, second, third = parse_cluster(entity, NOW)
    assert (first.label, first.heartbeat_age, first.active_threads) == ("nifi-1:8443", 3.0, 4)
    assert (first.flow_files_queued, first.bytes_queued) == (1234, round(5.5 * 1024 * 1024))
    assert first.roles == ("Cluster Coordinator", "Primary Node")
    assert (second.status, second.flow_files_queued, second.bytes_queued) == ("CONNECTED", 10, 2048)
    assert (third.heartbeat, third.heartbeat_age, third.api_port) == (None, None, None)
    assert third.label == "nifi-3"


def test_summary_of_a_standalone_and_of_a_disconnected_node() -> None:
    standalone = parse_cluster_summary({"clusterSummary": {"clustered": False}})
    assert standalone.speaks_for_cluster
    out = parse_cluster_summary(
        {"clusterSummary": {"clustered": True, "connectedToCluster": False}}
    )
    assert not out.speaks_for_cluster
    assert (out.connected_nodes, out.total_nodes) == (0, 0)


def node(status: str, age: float | None = 1.0) -> NodeStatus:
    return NodeStatus("id", "n", 8443, status, (), None, age, None, None, None)


@pytest.mark.parametrize(
    ("status", "age", "health"),
    [
        ("CONNECTED", 1.0, "ok"),
        ("CONNECTED", None, "ok"),
        ("CONNECTED", 31.0, "warning"),
        ("CONNECTING", None, "warning"),
        ("DISCONNECTED", None, "critical"),
        ("DISCONNECTING", None, "critical"),
        ("OFFLOADING", None, "critical"),
        ("OFFLOADED", None, "critical"),
        ("REMOVED", None, "warning"),
    ],
)
def test_node_verdicts(status: str, age: float | None, health: str) -> None:
    assert judge_node(node(status, age), max_heartbeat_age=30).health == health


def test_cluster_verdicts() -> None:
    clustered = ClusterSummary(True, True, 2, 3)
    assert evaluate_health(ClusterSummary(False, False, 0, 0), None).status == "ok"
    assert evaluate_health(ClusterSummary(True, True, 3, 3), None).status == "ok"
    unread = evaluate_health(clustered, None, nodes_error="HTTP 403")
    assert unread.status == "critical"
    assert unread.problems == ("1 of 3 nodes not connected (node states not read: HTTP 403)",)
    listed = evaluate_health(clustered, [node("CONNECTED"), node("CONNECTING")])
    assert (listed.status, listed.connected_nodes, listed.total_nodes) == ("warning", 1, 2)
    assert [v.health for v in listed.problem_nodes] == ["warning"]


@pytest.mark.parametrize(
    ("count", "size", "colour"),
    [
        (None, None, Colour.GREEN),
        (69, None, Colour.GREEN),
        (70, None, Colour.YELLOW),
        (None, 89, Colour.YELLOW),
        (10, 90, Colour.RED),
        (100, 0, Colour.RED),
    ],
)
def test_percent_mode(count: int | None, size: int | None, colour: Colour) -> None:
    queue = ConnectionQueue("c", "c", "g", "/", "s", "d", 0, 0, count, size)
    verdict = evaluate_connection(queue, QueueThresholds(mode=QueueMode.PERCENT))
    assert verdict.status is colour
    assert verdict.percent_status is colour
    assert verdict.count_status is None


def test_percent_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="percent_yellow must be <= percent_red"):
        QueueThresholds(percent_yellow=95, percent_red=90)
    assert "percent_red" not in QueueThresholds().to_dict()
    assert QueueThresholds(mode=QueueMode.PERCENT).to_dict()["percent_red"] == 90

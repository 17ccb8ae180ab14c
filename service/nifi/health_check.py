"""Judging a cluster's health from its summary and its nodes: pure evaluation.

A node out of the cluster (DISCONNECTED, DISCONNECTING, OFFLOADING, OFFLOADED) is
critical, a node CONNECTING a warning, a connected node whose heartbeat is older than
``max_heartbeat_age`` a warning; a standalone instance is ok. When the node list could
not be read, fewer connected than total nodes is critical: something is out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.nifi.health import (
    CONNECTED,
    JOINING,
    OUT_OF_CLUSTER,
    ClusterSummary,
    Health,
    NodeStatus,
    worst_health,
)

DEFAULT_MAX_HEARTBEAT_AGE = 30.0


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    node: NodeStatus
    health: Health
    problem: str | None

    def to_dict(self) -> dict[str, Any]:
        node = self.node
        return {
            "node_id": node.node_id,
            "address": node.address,
            "api_port": node.api_port,
            "status": node.status,
            "roles": list(node.roles),
            "heartbeat": node.heartbeat,
            "heartbeat_age_seconds": None
            if node.heartbeat_age is None
            else round(node.heartbeat_age, 1),
            "active_thread_count": node.active_threads,
            "flow_files_queued": node.flow_files_queued,
            "bytes_queued": node.bytes_queued,
            "health": self.health,
            "problem": self.problem,
        }


def judge_node(node: NodeStatus, max_heartbeat_age: float) -> NodeVerdict:
    """One node's health and, unless ok, why."""
    if node.status in OUT_OF_CLUSTER:
        return NodeVerdict(node, "critical", f"node {node.label} is {node.status}")
    if node.status in JOINING:
        return NodeVerdict(node, "warning", f"node {node.label} is {node.status}")
    if node.status != CONNECTED:
        return NodeVerdict(node, "warning", f"node {node.label} is in state {node.status}")
    age = node.heartbeat_age
    if age is not None and age > max_heartbeat_age:
        return NodeVerdict(node, "warning", f"node {node.label} last heartbeat {age:.0f} s ago")
    return NodeVerdict(node, "ok", None)


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """``nodes`` is None when the node list was not read (all connected, or not
    readable: ``nodes_error``)."""

    status: Health
    clustered: bool
    connected_nodes: int
    total_nodes: int
    nodes: tuple[NodeVerdict, ...] | None
    problems: tuple[str, ...] = ()
    nodes_error: str | None = None

    @property
    def problem_nodes(self) -> tuple[NodeVerdict, ...]:
        return tuple(v for v in self.nodes or () if v.health != "ok")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "clustered": self.clustered,
            "connected_nodes": self.connected_nodes,
            "total_nodes": self.total_nodes,
            "problems": list(self.problems),
        }
        if self.nodes is not None:
            data["nodes"] = [verdict.to_dict() for verdict in self.nodes]
        if self.nodes_error is not None:
            data["nodes_error"] = self.nodes_error
        return data


def unknown_health(error: str) -> ClusterHealth:
    """Health that could not be read."""
    return ClusterHealth(
        status="unknown",
        clustered=False,
        connected_nodes=0,
        total_nodes=0,
        nodes=None,
        problems=(f"cluster health not read: {error}",),
    )


def evaluate_health(
    summary: ClusterSummary,
    nodes: list[NodeStatus] | None,
    *,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    nodes_error: str | None = None,
) -> ClusterHealth:
    """The cluster's health from the summary of a connected node and, when read, its
    node list."""
    if not summary.clustered:
        return ClusterHealth("ok", False, 1, 1, None)
    problems: list[str] = []
    verdicts: tuple[NodeVerdict, ...] | None = None
    if nodes is not None:
        verdicts = tuple(judge_node(node, max_heartbeat_age) for node in nodes)
        problems = [v.problem for v in verdicts if v.problem is not None]
        status = worst_health([v.health for v in verdicts])
        connected = sum(1 for node in nodes if node.status == CONNECTED)
        total = len(nodes)
    else:
        connected, total = summary.connected_nodes, summary.total_nodes
        status = "ok"
        if connected < total:
            status = "critical"
            reason = f" (node states not read: {nodes_error})" if nodes_error else ""
            problems.append(f"{total - connected} of {total} nodes not connected{reason}")
    return ClusterHealth(
        status=status,
        clustered=True,
        connected_nodes=connected,
        total_nodes=total,
        nodes=verdicts,
        problems=tuple(problems),
        nodes_error=nodes_error,
    )

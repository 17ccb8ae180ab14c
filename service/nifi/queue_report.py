"""Queue traffic lights per cluster and overall: connection verdicts rolled up.

A cluster's colour is the worst of its connections' (``queue_status``) and of its health:
a node out of the cluster makes it red, a node joining yellow — its queues are missing
from what NiFi reports, so green would claim more than is known. With scope ``node``
every node's view is judged, each connection is reported in its worst node's view and
the worst node is named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.nifi.errors import MemberFailure
from service.nifi.health_check import ClusterHealth
from service.nifi.queue_check import (
    Colour,
    ConnectionVerdict,
    Outcome,
    QueueScope,
    QueueThresholds,
    evaluate_connection,
    worst,
)
from service.nifi.status import ConnectionQueue, NodeQueues

_HEALTH_COLOUR = {"critical": Colour.RED, "warning": Colour.YELLOW}


@dataclass(frozen=True, slots=True)
class ColourCounts:
    green: int = 0
    yellow: int = 0
    red: int = 0

    @classmethod
    def of(cls, colours: Iterable[Colour]) -> ColourCounts:
        """How many of ``colours`` are green, yellow and red."""
        counts = dict.fromkeys(Colour, 0)
        for colour in colours:
            counts[colour] += 1
        return cls(counts[Colour.GREEN], counts[Colour.YELLOW], counts[Colour.RED])

    def to_dict(self) -> dict[str, int]:
        return {"green": self.green, "yellow": self.yellow, "red": self.red}


@dataclass(frozen=True, slots=True)
class NodeQueueSummary:
    """One node's colour under scope ``node``."""

    node: str
    status: Colour
    connection_summary: ColourCounts

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": self.status.value,
            "connection_summary": self.connection_summary.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ClusterQueueResult:
    """One cluster's verdict. ``connections`` holds what is reported: only yellow and
    red ones unless all were asked for, worst first."""

    cluster_id: str
    cluster_name: str
    status: Colour
    answered_by: str | None
    connection_count: int
    connection_summary: ColourCounts
    connections: tuple[ConnectionVerdict, ...] = ()
    error: str | None = None
    unavailable_members: tuple[str, ...] = field(default=())
    passed_over: tuple[MemberFailure, ...] = ()
    health: ClusterHealth | None = None
    queue_status: Colour | None = None
    scope: QueueScope = QueueScope.CLUSTER
    nodes: tuple[NodeQueueSummary, ...] = ()
    worst_node: str | None = None

    @property
    def outcome(self) -> Outcome:
        return self.status.outcome

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "status": self.status.value,
            "queue_status": (self.queue_status or self.status).value,
            "answered_by": self.answered_by,
            "skipped": [member.to_dict() for member in self.passed_over],
            "connection_count": self.connection_count,
            "connection_summary": self.connection_summary.to_dict(),
            "connections": [verdict.to_dict() for verdict in self.connections],
        }
        if self.health is not None:
            data["cluster"] = self.health.to_dict()
        if self.scope is QueueScope.NODE:
            data["scope"] = self.scope.value
            data["nodes"] = [node.to_dict() for node in self.nodes]
            data["worst_node"] = self.worst_node
        if self.unavailable_members:
            data["unavailable_members"] = list(self.unavailable_members)
        if self.error is not None:
            data["error"] = self.error
        return data


def _severity_key(
    verdict: ConnectionVerdict, thresholds: QueueThresholds
) -> tuple[int, int, int, int, str]:
    conn = verdict.connection
    use = (conn.percent_use or 0) if thresholds.checks_percent else 0
    return (-verdict.status.rank, -use, -conn.flow_files, -conn.bytes, conn.id)


def _node_views(
    nodes: Sequence[NodeQueues], thresholds: QueueThresholds
) -> tuple[list[ConnectionVerdict], tuple[NodeQueueSummary, ...], str | None]:
    """Each connection in its worst node's view, each node's colour, the worst node."""
    worst_per_connection: dict[str, ConnectionVerdict] = {}
    summaries = []
    for node in nodes:
        verdicts = [evaluate_connection(c, thresholds, node.label) for c in node.connections]
        summaries.append(
            NodeQueueSummary(
                node=node.label,
                status=worst(v.status for v in verdicts),
                connection_summary=ColourCounts.of(v.status for v in verdicts),
            )
        )
        for verdict in verdicts:
            known = worst_per_connection.get(verdict.connection.id)
            if known is None or _severity_key(verdict, thresholds) < _severity_key(
                known, thresholds
            ):
                worst_per_connection[verdict.connection.id] = verdict
    ranked = sorted(
        summaries,
        key=lambda s: (-s.status.rank, -s.connection_summary.red, -s.connection_summary.yellow),
    )
    worst_node = ranked[0].node if ranked and ranked[0].status is not Colour.GREEN else None
    return list(worst_per_connection.values()), tuple(summaries), worst_node


def evaluate_cluster(
    *,
    cluster_id: str,
    cluster_name: str,
    connections: Iterable[ConnectionQueue],
    thresholds: QueueThresholds,
    answered_by: str | None = None,
    unavailable_members: tuple[str, ...] = (),
    include_all_connections: bool = False,
    passed_over: tuple[MemberFailure, ...] = (),
    health: ClusterHealth | None = None,
    scope: QueueScope = QueueScope.CLUSTER,
    nodes: Sequence[NodeQueues] | None = None,
) -> ClusterQueueResult:
    """Evaluate every connection of a cluster (in each node's view with scope ``node``
    when the nodes' views are given); keep only yellow/red ones (worst first) unless
    ``include_all_connections``; fold in the cluster's health."""
    node_summaries: tuple[NodeQueueSummary, ...] = ()
    worst_node = None
    if scope is QueueScope.NODE and nodes:
        verdicts, node_summaries, worst_node = _node_views(nodes, thresholds)
    else:
        verdicts = [evaluate_connection(conn, thresholds) for conn in connections]
    kept = [v for v in verdicts if include_all_connections or v.status is not Colour.GREEN]
    kept.sort(key=lambda verdict: _severity_key(verdict, thresholds))
    queue_status = worst(v.status for v in verdicts)
    health_colour = _HEALTH_COLOUR.get(health.status, Colour.GREEN) if health else Colour.GREEN
    return ClusterQueueResult(
        cluster_id=cluster_id,
        cluster_name=cluster_name,
        status=worst((queue_status, health_colour)),
        answered_by=answered_by,
        connection_count=len(verdicts),
        connection_summary=ColourCounts.of(v.status for v in verdicts),
        connections=tuple(kept),
        unavailable_members=unavailable_members,
        passed_over=passed_over,
        health=health,
        queue_status=queue_status,
        scope=scope,
        nodes=node_summaries,
        worst_node=worst_node,
    )


def unreachable_cluster(
    *,
    cluster_id: str,
    cluster_name: str,
    error: str,
    unavailable_members: tuple[str, ...] = (),
    passed_over: tuple[MemberFailure, ...] = (),
) -> ClusterQueueResult:
    """A cluster no member of which answered: red, with the error."""
    return ClusterQueueResult(
        cluster_id=cluster_id,
        cluster_name=cluster_name,
        status=Colour.RED,
        answered_by=None,
        connection_count=0,
        connection_summary=ColourCounts(),
        error=error,
        unavailable_members=unavailable_members,
        passed_over=passed_over,
    )


@dataclass(frozen=True, slots=True)
class QueueCheckReport:
    """The overall verdict: worst cluster colour, clusters per colour, thresholds."""

    status: Colour
    summary: ColourCounts
    thresholds: QueueThresholds
    clusters: tuple[ClusterQueueResult, ...]

    @property
    def outcome(self) -> Outcome:
        return self.status.outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall_status": self.status.value,
            "summary": self.summary.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "clusters": [cluster.to_dict() for cluster in self.clusters],
        }


def summarise(
    clusters: Iterable[ClusterQueueResult], thresholds: QueueThresholds
) -> QueueCheckReport:
    """Roll cluster results up into the overall report (green when there are none)."""
    results = tuple(clusters)
    return QueueCheckReport(
        status=worst(c.status for c in results),
        summary=ColourCounts.of(c.status for c in results),
        thresholds=thresholds,
        clusters=results,
    )

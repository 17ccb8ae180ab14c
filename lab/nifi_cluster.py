"""A simulated NiFi cluster: members sharing one flow, each with a connection state, and
the views a node's answers are built from.

As in NiFi, a connected node answers for the cluster (queues summed over the connected
nodes, back-pressure use the worst node's), while a node that is not connected answers
from its own share of the flow only — which is why a client must ask whether the node it
talks to is connected before believing it.
"""

from __future__ import annotations

import time
from typing import Any

from lab.nifi_instance import LabInstance, NodeState
from lab.nifi_render import format_data_size
from lab.nifi_topology import LabConnection, LabFlow, QueueValues, queue_values

COORDINATOR_ROLES = ("Primary Node", "Cluster Coordinator")
NOT_CONNECTED = "Only a node connected to a cluster can process the request."


def _max(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


class LabCluster:
    """Members of one cluster; the first connected member coordinates."""

    def __init__(self, name: str, flow: LabFlow, members: list[LabInstance]) -> None:
        self.name = name
        self.flow = flow
        self.members = members
        for member in members:
            member.cluster = self

    def member(self, name: str) -> LabInstance:
        return next(member for member in self.members if member.name == name)

    @property
    def connected(self) -> list[LabInstance]:
        return [m for m in self.members if m.state is NodeState.CONNECTED]

    @property
    def coordinator(self) -> LabInstance | None:
        connected = self.connected
        return connected[0] if connected else None

    def node_queue(self, connection: LabConnection, member: LabInstance) -> tuple[int, int]:
        """One member's share of ``connection``'s queue."""
        if connection.node_queues:
            return connection.node_queues.get(member.name, (0, 0))
        index = self.members.index(member)
        count = len(self.members)

        def share(total: int) -> int:
            return total // count + (1 if index < total % count else 0)

        return share(connection.flow_files), share(connection.bytes)

    def node_values(self, connection: LabConnection, member: LabInstance) -> QueueValues:
        return queue_values(connection, *self.node_queue(connection, member))

    def merged_values(self, connection: LabConnection) -> QueueValues:
        """The connected nodes merged as NiFi merges them: sums, and the highest use."""
        per_node = [self.node_values(connection, member) for member in self.connected]
        return QueueValues(
            sum(v.flow_files for v in per_node),
            sum(v.bytes for v in per_node),
            _max([v.percent_count for v in per_node]),
            _max([v.percent_bytes for v in per_node]),
        )

    def node_totals(self, member: LabInstance) -> tuple[int, int]:
        files = size = 0
        for connection in self.flow.connections.values():
            node_files, node_bytes = self.node_queue(connection, member)
            files += node_files
            size += node_bytes
        return files, size


def summary_entity(instance: LabInstance) -> dict[str, Any]:
    """``GET /flow/cluster/summary`` as ``instance`` answers it (a ``ClusterSummaryEntity``)."""
    cluster = instance.cluster
    summary: dict[str, Any] = {
        "clustered": cluster is not None,
        "connectedToCluster": cluster is not None and instance.state is NodeState.CONNECTED,
        "connectedNodeCount": 0,
        "totalNodeCount": 0,
    }
    if cluster is not None and summary["connectedToCluster"]:
        connected, total = len(cluster.connected), len(cluster.members)
        summary.update(
            connectedNodeCount=connected,
            totalNodeCount=total,
            connectedNodes=f"{connected} / {total}",
        )
    return {"clusterSummary": summary}


def _date_time(timestamp: float) -> str:
    # NiFi's DateTimeAdapter: MM/dd/yyyy HH:mm:ss z, in the server's zone (UTC here).
    return time.strftime("%m/%d/%Y %H:%M:%S UTC", time.gmtime(timestamp))


def node_entity(cluster: LabCluster, member: LabInstance, api_port: int) -> dict[str, Any]:
    """A ``NodeDTO``; only nodes that heartbeat carry heartbeat, threads and queue."""
    node: dict[str, Any] = {
        "nodeId": member.node_id,
        "address": member.address,
        "apiPort": api_port,
        "status": member.state.value,
        "roles": list(COORDINATOR_ROLES) if member is cluster.coordinator else [],
        "events": [],
    }
    if member.state in (NodeState.CONNECTED, NodeState.CONNECTING):
        now = time.time()
        files, size = cluster.node_totals(member)
        node.update(
            heartbeat=_date_time(now - member.heartbeat_age),
            nodeStartTime=_date_time(now - 3600),
            activeThreadCount=member.active_threads,
            queued=f"{files:,} / {format_data_size(size)}",
            flowFilesQueued=files,
            flowFileBytes=size,
        )
    return node


def cluster_entity(cluster: LabCluster, api_port: int) -> dict[str, Any]:
    """``GET /controller/cluster``: a ``ClusterEntity``."""
    return {
        "cluster": {
            "nodes": [node_entity(cluster, member, api_port) for member in cluster.members],
            "generated": time.strftime("%H:%M:%S UTC", time.gmtime()),
        }
    }

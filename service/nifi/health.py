"""Cluster health: who is in the cluster, in which state, and whether the node that
answers speaks for the cluster.

Shapes read (NiFi REST API, 1.x and 2.x):

- ``GET /flow/cluster/summary`` → ``ClusterSummaryEntity.clusterSummary``: ``clustered``,
  ``connectedToCluster``, ``connectedNodeCount``, ``totalNodeCount`` (the counts are 0
  on a node that is not connected). Readable with the ``/flow`` read policy that every
  check already needs.
- ``GET /controller/cluster`` → ``ClusterEntity.cluster``: ``nodes[]`` (``NodeDTO``:
  ``nodeId``, ``address``, ``apiPort``, ``status`` — a ``NodeConnectionState``,
  ``heartbeat`` as ``MM/dd/yyyy HH:mm:ss z``, ``roles``, ``activeThreadCount``,
  ``queued`` as ``"1,234 / 5.67 MB"``; 2.x adds ``flowFilesQueued``/``flowFileBytes``)
  and ``generated`` (``HH:mm:ss z``). Needs the ``/controller`` read policy; a node not
  connected to a cluster answers 404.

A node that is not connected answers every GET from its own flow, so its numbers are
never the cluster's: :func:`require_connected` turns that into "node not ready".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from service.nifi.client import NifiClient
from service.nifi.errors import NifiAuthError, NifiNodeNotReady, NifiRequestError
from service.nifi.status import as_int, parse_node_queued

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")

Health = Literal["ok", "warning", "critical", "unknown"]
HEALTH_RANK: dict[Health, int] = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}

CONNECTED = "CONNECTED"
# Out of the cluster or on the way out: the cluster runs without them.
OUT_OF_CLUSTER = frozenset({"DISCONNECTED", "DISCONNECTING", "OFFLOADING", "OFFLOADED"})
JOINING = frozenset({"CONNECTING"})
# Zones NiFi may print that say their offset; any other abbreviation is ambiguous
# (IST, CST…), so those heartbeats are aged against the answer's own ``generated``.
_UTC_ZONES = frozenset({"UTC", "GMT", "Z"})
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")
_DAY_SECONDS = 86_400


def worst_health(values: Sequence[Health]) -> Health:
    return max(values, key=HEALTH_RANK.__getitem__, default="ok")


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    clustered: bool
    connected_to_cluster: bool
    connected_nodes: int
    total_nodes: int

    @property
    def speaks_for_cluster(self) -> bool:
        """A standalone instance, or a node connected to its cluster."""
        return not self.clustered or self.connected_to_cluster


def parse_cluster_summary(entity: Mapping[str, Any]) -> ClusterSummary:
    summary = entity.get("clusterSummary")
    if not isinstance(summary, Mapping):
        raise NifiRequestError("cluster summary answer has no clusterSummary")
    return ClusterSummary(
        clustered=summary.get("clustered") is True,
        connected_to_cluster=summary.get("connectedToCluster") is True,
        connected_nodes=as_int(summary.get("connectedNodeCount")) or 0,
        total_nodes=as_int(summary.get("totalNodeCount")) or 0,
    )


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node as the cluster coordinator sees it."""

    node_id: str
    address: str
    api_port: int | None
    status: str
    roles: tuple[str, ...]
    heartbeat: str | None
    heartbeat_age: float | None
    active_threads: int | None
    flow_files_queued: int | None
    bytes_queued: int | None

    @property
    def label(self) -> str:
        return self.address if self.api_port is None else f"{self.address}:{self.api_port}"


def _zone_offset(zone: str) -> timedelta | None:
    if zone in _UTC_ZONES:
        return timedelta(0)
    match = _OFFSET_RE.match(zone)
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))


def _seconds_of_day(text: str) -> int | None:
    try:
        parsed = datetime.strptime(text, "%H:%M:%S")
    except ValueError:
        return None
    return parsed.hour * 3600 + parsed.minute * 60 + parsed.second


def heartbeat_age(heartbeat: str, generated: str | None, now: datetime) -> float | None:
    """Seconds since ``heartbeat`` (``MM/dd/yyyy HH:mm:ss z``): against ``now`` when the
    zone says its offset, else against ``generated`` (``HH:mm:ss z``, same zone) —
    a heartbeat is seconds old, so the time of day is enough. None when unreadable."""
    parts = heartbeat.split(" ", 2)
    if len(parts) != 3:
        return None
    day, clock, zone = parts
    offset = _zone_offset(zone)
    if offset is not None:
        try:
            local = datetime.strptime(f"{day} {clock}", "%m/%d/%Y %H:%M:%S")
        except ValueError:
            return None
        return max(0.0, (now - (local - offset).replace(tzinfo=UTC)).total_seconds())
    generated_parts = (generated or "").split(" ", 1)
    if len(generated_parts) != 2 or generated_parts[1] != zone:
        return None
    then, at = _seconds_of_day(clock), _seconds_of_day(generated_parts[0])
    if then is None or at is None:
        return None
    return float((at - then) % _DAY_SECONDS)


def _node(item: Mapping[str, Any], generated: str | None, now: datetime) -> NodeStatus:
    heartbeat = item.get("heartbeat")
    heartbeat = heartbeat if isinstance(heartbeat, str) else None
    files, size = as_int(item.get("flowFilesQueued")), as_int(item.get("flowFileBytes"))
    if files is None or size is None:
        parsed_files, parsed_size = parse_node_queued(item.get("queued"))
        files = parsed_files if files is None else files
        size = parsed_size if size is None else size
    roles = item.get("roles")
    return NodeStatus(
        node_id=str(item.get("nodeId") or ""),
        address=str(item.get("address") or ""),
        api_port=as_int(item.get("apiPort")),
        status=str(item.get("status") or "UNKNOWN").upper(),
        roles=tuple(sorted(r for r in roles if isinstance(r, str)))
        if isinstance(roles, list)
        else (),
        heartbeat=heartbeat,
        heartbeat_age=None if heartbeat is None else heartbeat_age(heartbeat, generated, now),
        active_threads=as_int(item.get("activeThreadCount")),
        flow_files_queued=files,
        bytes_queued=size,
    )


def parse_cluster(entity: Mapping[str, Any], now: datetime) -> list[NodeStatus]:
    """The nodes of a ``ClusterEntity``."""
    cluster = entity.get("cluster")
    nodes = cluster.get("nodes") if isinstance(cluster, Mapping) else None
    if not isinstance(nodes, list):
        raise NifiRequestError("cluster answer has no cluster.nodes")
    generated = cluster.get("generated") if isinstance(cluster, Mapping) else None
    generated = generated if isinstance(generated, str) else None
    return [_node(item, generated, now) for item in nodes if isinstance(item, Mapping)]


async def fetch_summary(client: NifiClient) -> ClusterSummary:
    """``GET /flow/cluster/summary``."""
    body = await client.get_json("flow/cluster/summary")
    if not isinstance(body, dict):
        raise NifiRequestError(f"{client.name}: cluster summary is not an object")
    return parse_cluster_summary(body)


async def fetch_nodes(client: NifiClient) -> list[NodeStatus]:
    """``GET /controller/cluster``."""
    body = await client.get_json("controller/cluster")
    if not isinstance(body, dict):
        raise NifiRequestError(f"{client.name}: cluster answer is not an object")
    return parse_cluster(body, datetime.now(UTC))


def require_connected(client: NifiClient, summary: ClusterSummary) -> None:
    """Raise :class:`NifiNodeNotReady` when the node answering is clustered but not
    connected: what it says is its own, not the cluster's."""
    if not summary.speaks_for_cluster:
        raise NifiNodeNotReady(
            f"{client.name}: not connected to its cluster; its answers are its own flow's"
        )


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Await both concurrently (``second`` in this task: a task fewer per check); when
    ``second`` fails, ``first`` is cancelled, not left behind."""
    task = asyncio.ensure_future(first)
    try:
        value = await second
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return await task, value


async def read_connected(
    client: NifiClient, fetch: Callable[[NifiClient], Awaitable[T]]
) -> tuple[ClusterSummary | str, T]:
    """``fetch`` and the cluster summary from one node at once (one round trip of
    latency); raises :class:`NifiNodeNotReady` when the node is not connected to its
    cluster. A summary that cannot be read is returned as its error text and the node
    is taken at its word."""

    async def summary() -> ClusterSummary | str:
        try:
            return await fetch_summary(client)
        except (NifiRequestError, NifiAuthError) as exc:
            return exc.message

    found, value = await both(summary(), fetch(client))
    if isinstance(found, ClusterSummary):
        require_connected(client, found)
    return found, value

"""The NiFi checks end to end: fetch from a cluster, then evaluate.

Every check reads from a node connected to its cluster (or a standalone instance):
the cluster summary is fetched beside the check's own request, and a node that is not
connected is passed over like one that is not ready. Executors call these; they do no
progress reporting or persistence themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from service.nifi.client import NifiClient
from service.nifi.cluster import ClusterAnswer, call_cluster
from service.nifi.configs import CheckProcessGroupConfig
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import (
    NifiAuthError,
    NifiClusterUnavailable,
    NifiError,
    NifiRequestError,
)
from service.nifi.health import ClusterSummary, fetch_nodes, read_connected
from service.nifi.health_check import (
    DEFAULT_MAX_HEARTBEAT_AGE,
    ClusterHealth,
    evaluate_health,
    unknown_health,
)
from service.nifi.pool import NifiClientPool
from service.nifi.process_group_check import ProcessGroupReport, evaluate_report
from service.nifi.queue_check import QueueScope, QueueThresholds
from service.nifi.queue_report import (
    ClusterQueueResult,
    QueueCheckReport,
    evaluate_cluster,
    summarise,
    unreachable_cluster,
)
from service.nifi.status import ProcessGroupState, QueueStatus

logger = logging.getLogger(__name__)

# Listings fetched at once from one instance while walking descendants.
DESCENDANT_FETCH_CONCURRENCY = 8


async def read_health(
    client: NifiClient,
    summary: ClusterSummary | str,
    *,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    always_list_nodes: bool = False,
) -> ClusterHealth:
    """The cluster's health as the connected node ``client`` talks to sees it. The node
    list (``/controller/cluster``) is read when nodes are missing, or always on request;
    a list that cannot be read (no ``/controller`` read policy) leaves the counts."""
    if isinstance(summary, str):
        return unknown_health(summary)
    nodes = error = None
    wanted = always_list_nodes or summary.connected_nodes < summary.total_nodes
    if summary.clustered and wanted:
        try:
            nodes = await fetch_nodes(client)
        except (NifiRequestError, NifiAuthError) as exc:
            error = exc.message
    return evaluate_health(summary, nodes, max_heartbeat_age=max_heartbeat_age, nodes_error=error)


@dataclass(frozen=True, slots=True)
class _QueueRead:
    status: QueueStatus
    health: ClusterHealth


def _unavailable(cluster: NifiCluster, exc: NifiError) -> ClusterQueueResult:
    if isinstance(exc, NifiClusterUnavailable):
        return unreachable_cluster(
            cluster_id=cluster.id,
            cluster_name=cluster.name,
            error=exc.message,
            unavailable_members=tuple(f.member for f in exc.failures),
            passed_over=exc.failures,
        )
    logger.warning("NiFi check failed: %s", exc.message, extra={"nifi_cluster": cluster.id})
    return unreachable_cluster(cluster_id=cluster.id, cluster_name=cluster.name, error=exc.message)


async def check_cluster_queues(
    pool: NifiClientPool,
    cluster: NifiCluster,
    thresholds: QueueThresholds,
    *,
    include_all_connections: bool = False,
    scope: QueueScope = QueueScope.CLUSTER,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
) -> ClusterQueueResult:
    """One cluster's queue verdict from the first connected member that answers: the
    status (per node with scope ``node``) and the cluster summary at once, the node list
    only when a node is missing. A cluster that cannot be read is red with the error;
    this never raises a NiFi error, so one bad cluster leaves the others unaffected."""
    nodewise = scope is QueueScope.NODE

    async def read(client: NifiClient) -> _QueueRead:
        summary, status = await read_connected(client, lambda c: c.queue_status(nodewise=nodewise))
        health = await read_health(client, summary, max_heartbeat_age=max_heartbeat_age)
        return _QueueRead(status, health)

    try:
        answer: ClusterAnswer[_QueueRead] = await call_cluster(pool, cluster, read)
    except NifiError as exc:
        return _unavailable(cluster, exc)
    return evaluate_cluster(
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        connections=answer.value.status.connections,
        thresholds=thresholds,
        answered_by=answer.answered_by,
        unavailable_members=tuple(f.member for f in answer.failures),
        include_all_connections=include_all_connections,
        passed_over=answer.passed_over,
        health=answer.value.health,
        scope=scope,
        nodes=answer.value.status.nodes,
    )


async def check_queues(
    pool: NifiClientPool,
    clusters: Sequence[NifiCluster],
    thresholds: QueueThresholds,
    *,
    include_all_connections: bool = False,
    concurrency: int = 10,
    scope: QueueScope = QueueScope.CLUSTER,
) -> QueueCheckReport:
    """Check ``clusters`` with at most ``concurrency`` in flight; results keep the
    order of ``clusters``."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    semaphore = asyncio.Semaphore(concurrency)

    async def one(cluster: NifiCluster) -> ClusterQueueResult:
        async with semaphore:
            return await check_cluster_queues(
                pool,
                cluster,
                thresholds,
                include_all_connections=include_all_connections,
                scope=scope,
            )

    results = await asyncio.gather(*(one(cluster) for cluster in clusters))
    return summarise(results, thresholds)


def _child_path(parent_path: str, name: str) -> str:
    return f"{parent_path.rstrip('/')}/{name}"


def _paths(group: ProcessGroupState, configured: str | None) -> tuple[str | None, str]:
    """The group's own path and the prefix of its children's paths.

    The root group is ``/`` and its children ``/<root name>/<child>``, as the queue
    check reports them. For another group the configured path is used; without one
    its children are shown relative to the group's name.
    """
    if group.parent_id is None:
        return configured or "/", f"/{group.name}"
    return configured, configured or group.name


@dataclass(frozen=True, slots=True)
class _GroupTree:
    group: ProcessGroupState
    path: str | None
    children: list[tuple[ProcessGroupState, str]] | None


async def _descendants(
    client: NifiClient, group: ProcessGroupState, path: str, recursive: bool
) -> list[tuple[ProcessGroupState, str]]:
    """Direct children, or with ``recursive`` every descendant breadth first, each
    with its path. Every group's listing carries its children's counters, so one
    request per group that is walked suffices."""
    semaphore = asyncio.Semaphore(DESCENDANT_FETCH_CONCURRENCY)

    async def children_of(
        parent: tuple[ProcessGroupState, str],
    ) -> list[tuple[ProcessGroupState, str]]:
        async with semaphore:
            listing = await client.child_process_groups(parent[0].id)
        return [(child, _child_path(parent[1], child.name)) for child in listing]

    found: list[tuple[ProcessGroupState, str]] = []
    level = [(group, path)]
    while level:
        batches = await asyncio.gather(*(children_of(parent) for parent in level))
        level = [child for batch in batches for child in batch]
        found.extend(level)
        if not recursive:
            break
    return found


async def check_process_group(
    pool: NifiClientPool, cluster: NifiCluster, config: CheckProcessGroupConfig
) -> ProcessGroupReport:
    """Evaluate the configured process group (and children) on the first member that
    answers. Raises :class:`NifiClusterUnavailable` when none does and other
    :class:`NifiError` subclasses when NiFi refuses (unknown group → 404)."""

    async def read_tree(client: NifiClient) -> _GroupTree:
        group = await client.process_group(config.process_group_id)
        path, base = _paths(group, config.process_group_path)
        if not config.check_children:
            return _GroupTree(group, path, None)
        return _GroupTree(group, path, await _descendants(client, group, base, config.recursive))

    async def fetch(client: NifiClient) -> _GroupTree:
        return (await read_connected(client, read_tree))[1]

    answer = await call_cluster(pool, cluster, fetch)
    tree = answer.value
    return evaluate_report(
        cluster_id=cluster.id,
        answered_by=answer.answered_by,
        expected=config.expected_status,
        group=tree.group,
        group_path=tree.path,
        children=tree.children,
        recursive=config.recursive,
        unavailable_members=tuple(f.member for f in answer.failures),
        passed_over=answer.passed_over,
    )

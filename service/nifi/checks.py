"""The two NiFi checks end to end: fetch from a cluster, then evaluate.

Executors call these; they do no progress reporting or persistence themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from service.nifi.client import NifiClient
from service.nifi.cluster import call_cluster
from service.nifi.configs import CheckProcessGroupConfig
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import NifiClusterUnavailable, NifiError
from service.nifi.pool import NifiClientPool
from service.nifi.process_group_check import ProcessGroupReport, evaluate_report
from service.nifi.queue_check import (
    ClusterQueueResult,
    QueueCheckReport,
    QueueThresholds,
    evaluate_cluster,
    summarise,
    unreachable_cluster,
)
from service.nifi.status import ProcessGroupState

logger = logging.getLogger(__name__)

# Listings fetched at once from one instance while walking descendants.
DESCENDANT_FETCH_CONCURRENCY = 8


async def check_cluster_queues(
    pool: NifiClientPool,
    cluster: NifiCluster,
    thresholds: QueueThresholds,
    *,
    include_all_connections: bool = False,
) -> ClusterQueueResult:
    """One cluster's queue verdict from one status request to the first member that
    answers. A cluster that cannot be read is red with the error; this never raises
    a NiFi error, so one bad cluster leaves the others unaffected."""
    try:
        answer = await call_cluster(pool, cluster, NifiClient.queue_status)
    except NifiClusterUnavailable as exc:
        return unreachable_cluster(
            cluster_id=cluster.id,
            cluster_name=cluster.name,
            error=exc.message,
            unavailable_members=tuple(f.member for f in exc.failures),
        )
    except NifiError as exc:
        logger.warning(
            "NiFi queue status failed: %s", exc.message, extra={"nifi_cluster": cluster.id}
        )
        return unreachable_cluster(
            cluster_id=cluster.id, cluster_name=cluster.name, error=exc.message
        )
    return evaluate_cluster(
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        connections=answer.value,
        thresholds=thresholds,
        answered_by=answer.answered_by,
        unavailable_members=tuple(f.member for f in answer.failures),
        include_all_connections=include_all_connections,
    )


async def check_queues(
    pool: NifiClientPool,
    clusters: Sequence[NifiCluster],
    thresholds: QueueThresholds,
    *,
    include_all_connections: bool = False,
    concurrency: int = 10,
) -> QueueCheckReport:
    """Check ``clusters`` with at most ``concurrency`` in flight; results keep the
    order of ``clusters``."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    semaphore = asyncio.Semaphore(concurrency)

    async def one(cluster: NifiCluster) -> ClusterQueueResult:
        async with semaphore:
            return await check_cluster_queues(
                pool, cluster, thresholds, include_all_connections=include_all_connections
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

    async def fetch(client: NifiClient) -> _GroupTree:
        group = await client.process_group(config.process_group_id)
        path, base = _paths(group, config.process_group_path)
        if not config.check_children:
            return _GroupTree(group, path, None)
        return _GroupTree(group, path, await _descendants(client, group, base, config.recursive))

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
    )

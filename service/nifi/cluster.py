"""Calls answered by whichever member of a cluster is up, the primary first."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.nifi.client import NifiClient
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import MemberFailure, NifiClusterUnavailable, NifiUnavailable
from service.nifi.pool import NifiClientPool

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClusterAnswer(Generic[T]):
    """The value, the member that gave it, and the members tried before it."""

    value: T
    answered_by: str
    failures: tuple[MemberFailure, ...] = ()


async def call_cluster(
    pool: NifiClientPool,
    cluster: NifiCluster,
    operation: Callable[[NifiClient], Awaitable[T]],
) -> ClusterAnswer[T]:
    """Run ``operation`` against the primary; when it is unavailable (no connection,
    timeout, 5xx after retries), against each other member in turn.

    Authentication and request errors are raised at once: another member would
    answer the same. Raises :class:`NifiClusterUnavailable` when no member answers.
    """
    failures: list[MemberFailure] = []
    for endpoint in cluster.in_failover_order():
        try:
            value = await operation(pool.get(endpoint))
        except NifiUnavailable as exc:
            failures.append(MemberFailure(member=endpoint.name, error=exc.message))
            logger.warning(
                "NiFi cluster member unavailable: %s",
                exc.message,
                extra={"nifi_cluster": cluster.id, "nifi_instance": endpoint.name},
            )
            continue
        return ClusterAnswer(value=value, answered_by=endpoint.name, failures=tuple(failures))
    raise NifiClusterUnavailable(cluster.id, tuple(failures))

"""Calls answered by whichever member of a cluster is up and ready, the primary first."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service.nifi.client import NifiClient
from service.nifi.endpoints import NifiCluster, NifiEndpoint
from service.nifi.errors import (
    MemberFailure,
    NifiClusterUnavailable,
    NifiNodeNotReady,
    NifiUnavailable,
)
from service.nifi.pool import NifiClientPool

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClusterAnswer(Generic[T]):
    """The value, the member that gave it, the members tried before it, and the members
    not asked because they were backed off."""

    value: T
    answered_by: str
    failures: tuple[MemberFailure, ...] = ()
    skipped: tuple[MemberFailure, ...] = ()

    @property
    def passed_over(self) -> tuple[MemberFailure, ...]:
        """Every member that did not answer, tried or not, with the reason."""
        return (*self.failures, *self.skipped)


def passed_over_dicts(members: tuple[MemberFailure, ...]) -> list[dict[str, Any]]:
    """``[{member, reason, tried}]`` for a result."""
    return [member.to_dict() for member in members]


async def call_cluster(
    pool: NifiClientPool,
    cluster: NifiCluster,
    operation: Callable[[NifiClient], Awaitable[T]],
) -> ClusterAnswer[T]:
    """Run ``operation`` against the primary; when it is unavailable (no connection,
    timeout, 5xx after retries) or not ready (409, 503, not connected to its cluster),
    against each other member in turn.

    A member that said it was not ready is backed off (:mod:`service.nifi.readiness`):
    asked after the others until its back-off ends. Authentication and request errors
    are raised at once: another member would answer the same. Raises
    :class:`NifiClusterUnavailable` when no member answers.
    """
    readiness = pool.readiness
    now = pool.now()
    order = cluster.in_failover_order()
    waiting = {e.name: b for e in order if (b := readiness.backed_off(e.name, now)) is not None}
    ready = [e for e in order if e.name not in waiting]
    failures: list[MemberFailure] = []
    for endpoint in [*ready, *(e for e in order if e.name in waiting)]:
        try:
            value = await operation(pool.get(endpoint))
        except NifiNodeNotReady as exc:
            backoff = readiness.not_ready(endpoint.name, exc.message, pool.now())
            failures.append(MemberFailure(member=endpoint.name, error=exc.message))
            _log_passed_over(cluster, endpoint, exc.message, backoff.until - pool.now())
            continue
        except NifiUnavailable as exc:
            failures.append(MemberFailure(member=endpoint.name, error=exc.message))
            _log_passed_over(cluster, endpoint, exc.message, None)
            continue
        readiness.ready(endpoint.name)
        tried = {failure.member for failure in failures} | {endpoint.name}
        skipped = tuple(
            MemberFailure(
                member=name,
                error=f"backed off after: {backoff.reason}",
                tried=False,
            )
            for name, backoff in waiting.items()
            if name not in tried
        )
        return ClusterAnswer(
            value=value, answered_by=endpoint.name, failures=tuple(failures), skipped=skipped
        )
    raise NifiClusterUnavailable(cluster.id, tuple(failures))


def _log_passed_over(
    cluster: NifiCluster, endpoint: NifiEndpoint, reason: str, backoff: float | None
) -> None:
    logger.warning(
        "NiFi cluster member passed over: %s",
        reason,
        extra={
            "nifi_cluster": cluster.id,
            "nifi_instance": endpoint.name,
            "backoff_seconds": None if backoff is None else round(backoff, 1),
        },
    )

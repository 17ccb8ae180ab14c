"""The two checks of a cluster as a whole: its health (``check_cluster``) and its
bulletins (``check_bulletins``). Both read from a member connected to the cluster and
never raise a NiFi error: a cluster no member answers for is a verdict too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.nifi.bulletins import Bulletin, BulletinFilter, fetch_board, level_counts
from service.nifi.client import NifiClient
from service.nifi.cluster import call_cluster
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import (
    MemberFailure,
    NifiAuthError,
    NifiClusterUnavailable,
    NifiError,
    NifiRequestError,
)
from service.nifi.health import (
    Health,
    NodeStatus,
    both,
    fetch_nodes,
    fetch_summary,
    read_connected,
    require_connected,
)
from service.nifi.health_check import DEFAULT_MAX_HEARTBEAT_AGE, ClusterHealth, evaluate_health
from service.nifi.pool import NifiClientPool


@dataclass(frozen=True, slots=True)
class Answered:
    """Who answered for a cluster, who was passed over, or why nobody answered."""

    cluster_id: str
    cluster_name: str
    answered_by: str | None = None
    passed_over: tuple[MemberFailure, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "answered_by": self.answered_by,
            "skipped": [member.to_dict() for member in self.passed_over],
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _unanswered(cluster: NifiCluster, exc: NifiError) -> Answered:
    passed_over = exc.failures if isinstance(exc, NifiClusterUnavailable) else ()
    return Answered(cluster.id, cluster.name, passed_over=passed_over, error=exc.message)


@dataclass(frozen=True, slots=True)
class ClusterHealthResult:
    """``check_cluster``'s verdict on one cluster; ``health`` is None when no connected
    member answered (``answer.error`` says why), which is critical."""

    answer: Answered
    health: ClusterHealth | None

    @property
    def status(self) -> Health:
        return "critical" if self.health is None else self.health.status

    def to_dict(self) -> dict[str, Any]:
        data = self.answer.to_dict()
        if self.health is not None:
            data |= self.health.to_dict()
        data["status"] = self.status
        return data


async def _nodes_or_error(client: NifiClient) -> list[NodeStatus] | str:
    try:
        return await fetch_nodes(client)
    except (NifiRequestError, NifiAuthError) as exc:
        return exc.message


async def check_cluster_health(
    pool: NifiClientPool,
    cluster: NifiCluster,
    *,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
) -> ClusterHealthResult:
    """The summary and the node list from the first connected member that answers, at
    once; never raises a NiFi error."""

    async def read(client: NifiClient) -> ClusterHealth:
        summary, nodes = await both(fetch_summary(client), _nodes_or_error(client))
        require_connected(client, summary)
        listed = None if isinstance(nodes, str) else nodes
        error = nodes if isinstance(nodes, str) and summary.clustered else None
        return evaluate_health(
            summary, listed, max_heartbeat_age=max_heartbeat_age, nodes_error=error
        )

    try:
        answer = await call_cluster(pool, cluster, read)
    except NifiError as exc:
        return ClusterHealthResult(_unanswered(cluster, exc), None)
    return ClusterHealthResult(
        Answered(cluster.id, cluster.name, answer.answered_by, answer.passed_over),
        answer.value,
    )


@dataclass(frozen=True, slots=True)
class ClusterBulletins:
    """What one cluster's board held (``board``), or why it could not be read."""

    answer: Answered
    board: list[Bulletin] | None


async def read_bulletins(pool: NifiClientPool, cluster: NifiCluster) -> ClusterBulletins:
    """The whole board from the first connected member that answers."""

    async def read(client: NifiClient) -> list[Bulletin]:
        return (await read_connected(client, fetch_board))[1]

    try:
        answer = await call_cluster(pool, cluster, read)
    except NifiError as exc:
        return ClusterBulletins(_unanswered(cluster, exc), None)
    return ClusterBulletins(
        Answered(cluster.id, cluster.name, answer.answered_by, answer.passed_over), answer.value
    )


@dataclass(frozen=True, slots=True)
class BulletinReport:
    """One cluster's new bulletins that pass the filter, newest last, at most
    ``max_reported`` of them listed; critical with an ERROR, warning with a WARNING."""

    answer: Answered
    reported: list[Bulletin] = field(default_factory=list)
    new_count: int = 0
    not_readable: int = 0
    max_reported: int = 100
    may_have_missed: bool = False
    first_look: bool = False

    @property
    def status(self) -> Health:
        if self.answer.error is not None:
            return "critical"
        levels = {b.level for b in self.reported if b.level is not None}
        if "ERROR" in levels:
            return "critical"
        return "warning" if "WARNING" in levels else "ok"

    def to_dict(self) -> dict[str, Any]:
        listed = self.reported[-self.max_reported :]
        return self.answer.to_dict() | {
            "status": self.status,
            "new_bulletins": self.new_count,
            "reported": len(self.reported),
            "levels": level_counts(self.reported),
            "not_readable": self.not_readable,
            "bulletins": [bulletin.to_dict() for bulletin in listed],
            "truncated": len(self.reported) > len(listed),
            "may_have_missed": self.may_have_missed,
            "first_look": self.first_look,
        }


def report_bulletins(
    answer: Answered,
    fresh: list[Bulletin],
    selection: BulletinFilter,
    *,
    max_reported: int,
    may_have_missed: bool = False,
    first_look: bool = False,
) -> BulletinReport:
    """The report of a cluster's new bulletins under ``selection``."""
    return BulletinReport(
        answer=answer,
        reported=[b for b in fresh if selection.keeps(b)],
        new_count=len(fresh),
        not_readable=sum(1 for b in fresh if b.level is None),
        max_reported=max_reported,
        may_have_missed=may_have_missed,
        first_look=first_look,
    )

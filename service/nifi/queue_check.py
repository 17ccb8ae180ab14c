"""Queue traffic lights: pure evaluation of connection queue depths.

Per metric ``value >= red`` is red, ``value >= yellow`` yellow, else green; mode
``count`` looks at flow files, ``bytes`` at the size in MB (1 MB = 1,048,576 bytes),
``both`` at the worse of the two. A connection's colour rolls up worst-of into its
cluster's and the clusters' into the overall colour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from service.nifi.status import BYTES_PER_MB, ConnectionQueue

Outcome = Literal["ok", "warning", "critical"]


class Colour(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def outcome(self) -> Outcome:
        """green → ok, yellow → warning, red → critical."""
        return _OUTCOME[self]


_RANK = {Colour.GREEN: 0, Colour.YELLOW: 1, Colour.RED: 2}
_OUTCOME: dict[Colour, Outcome] = {
    Colour.GREEN: "ok",
    Colour.YELLOW: "warning",
    Colour.RED: "critical",
}


def worst(colours: Iterable[Colour]) -> Colour:
    """The worst colour of ``colours``; green when there are none."""
    return max(colours, key=lambda colour: colour.rank, default=Colour.GREEN)


class QueueMode(StrEnum):
    COUNT = "count"
    BYTES = "bytes"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class QueueThresholds:
    """Validated: every threshold ≥ 0 (0 is honoured) and yellow ≤ red."""

    mode: QueueMode = QueueMode.COUNT
    count_yellow: int = 1000
    count_red: int = 10000
    bytes_yellow_mb: float = 10.0
    bytes_red_mb: float = 100.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", QueueMode(self.mode))
        for name in ("count_yellow", "count_red", "bytes_yellow_mb", "bytes_red_mb"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.count_yellow > self.count_red:
            raise ValueError("count_yellow must be <= count_red")
        if self.bytes_yellow_mb > self.bytes_red_mb:
            raise ValueError("bytes_yellow_mb must be <= bytes_red_mb")

    @property
    def checks_count(self) -> bool:
        return self.mode in (QueueMode.COUNT, QueueMode.BOTH)

    @property
    def checks_bytes(self) -> bool:
        return self.mode in (QueueMode.BYTES, QueueMode.BOTH)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "count_yellow": self.count_yellow,
            "count_red": self.count_red,
            "bytes_yellow_mb": self.bytes_yellow_mb,
            "bytes_red_mb": self.bytes_red_mb,
        }


def traffic_light(value: float, yellow: float, red: float) -> Colour:
    """``value >= red`` → red, ``value >= yellow`` → yellow, else green."""
    if value >= red:
        return Colour.RED
    if value >= yellow:
        return Colour.YELLOW
    return Colour.GREEN


@dataclass(frozen=True, slots=True)
class ConnectionVerdict:
    connection: ConnectionQueue
    status: Colour
    count_status: Colour | None
    bytes_status: Colour | None

    def to_dict(self) -> dict[str, Any]:
        conn = self.connection
        data: dict[str, Any] = {
            "id": conn.id,
            "name": conn.name,
            "group_id": conn.group_id,
            "group_path": conn.group_path,
            "source": conn.source_name,
            "destination": conn.destination_name,
            "flow_files_queued": conn.flow_files,
            "bytes_queued": conn.bytes,
            "queued_mb": round(conn.bytes / BYTES_PER_MB, 3),
            "status": self.status.value,
        }
        if self.count_status is not None:
            data["count_status"] = self.count_status.value
        if self.bytes_status is not None:
            data["bytes_status"] = self.bytes_status.value
        return data


def evaluate_connection(
    connection: ConnectionQueue, thresholds: QueueThresholds
) -> ConnectionVerdict:
    """The colour of one connection under ``thresholds``."""
    count_status = bytes_status = None
    if thresholds.checks_count:
        count_status = traffic_light(
            connection.flow_files, thresholds.count_yellow, thresholds.count_red
        )
    if thresholds.checks_bytes:
        # Compared in bytes so a queue of exactly N MB meets an N MB threshold.
        bytes_status = traffic_light(
            connection.bytes,
            thresholds.bytes_yellow_mb * BYTES_PER_MB,
            thresholds.bytes_red_mb * BYTES_PER_MB,
        )
    # Run per connection of every canvas: the two colours are compared directly.
    if count_status is None:
        status = bytes_status or Colour.GREEN
    elif bytes_status is None or _RANK[count_status] >= _RANK[bytes_status]:
        status = count_status
    else:
        status = bytes_status
    return ConnectionVerdict(connection, status, count_status, bytes_status)


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

    @property
    def outcome(self) -> Outcome:
        return self.status.outcome

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "status": self.status.value,
            "answered_by": self.answered_by,
            "connection_count": self.connection_count,
            "connection_summary": self.connection_summary.to_dict(),
            "connections": [verdict.to_dict() for verdict in self.connections],
        }
        if self.unavailable_members:
            data["unavailable_members"] = list(self.unavailable_members)
        if self.error is not None:
            data["error"] = self.error
        return data


def _severity_key(verdict: ConnectionVerdict) -> tuple[int, int, int, str]:
    conn = verdict.connection
    return (-verdict.status.rank, -conn.flow_files, -conn.bytes, conn.id)


def evaluate_cluster(
    *,
    cluster_id: str,
    cluster_name: str,
    connections: Iterable[ConnectionQueue],
    thresholds: QueueThresholds,
    answered_by: str | None = None,
    unavailable_members: tuple[str, ...] = (),
    include_all_connections: bool = False,
) -> ClusterQueueResult:
    """Evaluate every connection of a cluster; keep only yellow/red ones (worst first)
    unless ``include_all_connections``."""
    verdicts = [evaluate_connection(conn, thresholds) for conn in connections]
    kept = [v for v in verdicts if include_all_connections or v.status is not Colour.GREEN]
    kept.sort(key=_severity_key)
    return ClusterQueueResult(
        cluster_id=cluster_id,
        cluster_name=cluster_name,
        status=worst(v.status for v in verdicts),
        answered_by=answered_by,
        connection_count=len(verdicts),
        connection_summary=ColourCounts.of(v.status for v in verdicts),
        connections=tuple(kept),
        unavailable_members=unavailable_members,
    )


def unreachable_cluster(
    *,
    cluster_id: str,
    cluster_name: str,
    error: str,
    unavailable_members: tuple[str, ...] = (),
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

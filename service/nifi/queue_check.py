"""Queue traffic lights: pure evaluation of one connection's queue.

Per metric ``value >= red`` is red, ``value >= yellow`` yellow, else green; mode
``count`` looks at flow files, ``bytes`` at the size in MB (1 MB = 1,048,576 bytes),
``both`` at the worse of the two, and ``percent`` at how full the queue is against its
own back-pressure thresholds as NiFi computes it (``percentUseCount``/``percentUseBytes``,
the fuller of the two; a connection without thresholds is green). Cluster results and
the overall report are :mod:`service.nifi.queue_report`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, NamedTuple

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
    # Called over every connection of a canvas: compared by identity, red ends the walk.
    found = Colour.GREEN
    for colour in colours:
        if colour is Colour.RED:
            return colour
        if colour is Colour.YELLOW:
            found = colour
    return found


class QueueMode(StrEnum):
    COUNT = "count"
    BYTES = "bytes"
    BOTH = "both"
    PERCENT = "percent"


class QueueScope(StrEnum):
    """``cluster``: NiFi's merged view (counts summed over nodes, percentages the
    fullest node's); ``node``: every node's own view, the worst node deciding."""

    CLUSTER = "cluster"
    NODE = "node"


@dataclass(frozen=True, slots=True)
class QueueThresholds:
    """Validated: every threshold ≥ 0 (0 is honoured) and yellow ≤ red."""

    mode: QueueMode = QueueMode.COUNT
    count_yellow: int = 1000
    count_red: int = 10000
    bytes_yellow_mb: float = 10.0
    bytes_red_mb: float = 100.0
    percent_yellow: int = 70
    percent_red: int = 90

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", QueueMode(self.mode))
        for name in _THRESHOLD_NAMES:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for yellow, red in _PAIRS:
            if getattr(self, yellow) > getattr(self, red):
                raise ValueError(f"{yellow} must be <= {red}")

    @property
    def checks_count(self) -> bool:
        return self.mode in (QueueMode.COUNT, QueueMode.BOTH)

    @property
    def checks_bytes(self) -> bool:
        return self.mode in (QueueMode.BYTES, QueueMode.BOTH)

    @property
    def checks_percent(self) -> bool:
        return self.mode is QueueMode.PERCENT

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as reported (percent ones only in percent mode, so earlier
        results keep their shape)."""
        data: dict[str, Any] = {
            "mode": self.mode.value,
            "count_yellow": self.count_yellow,
            "count_red": self.count_red,
            "bytes_yellow_mb": self.bytes_yellow_mb,
            "bytes_red_mb": self.bytes_red_mb,
        }
        if self.checks_percent:
            data |= {"percent_yellow": self.percent_yellow, "percent_red": self.percent_red}
        return data


_PAIRS = (
    ("count_yellow", "count_red"),
    ("bytes_yellow_mb", "bytes_red_mb"),
    ("percent_yellow", "percent_red"),
)
_THRESHOLD_NAMES = tuple(name for pair in _PAIRS for name in pair)


def traffic_light(value: float, yellow: float, red: float) -> Colour:
    """``value >= red`` → red, ``value >= yellow`` → yellow, else green."""
    if value >= red:
        return Colour.RED
    if value >= yellow:
        return Colour.YELLOW
    return Colour.GREEN


class ConnectionVerdict(NamedTuple):
    """A connection's colours (a named tuple: one is made per connection checked)."""

    connection: ConnectionQueue
    status: Colour
    count_status: Colour | None
    bytes_status: Colour | None
    percent_status: Colour | None = None
    node: str | None = None  # the node whose view this is (scope node)

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
        if conn.percent_count is not None:
            data["percent_use_count"] = conn.percent_count
        if conn.percent_bytes is not None:
            data["percent_use_bytes"] = conn.percent_bytes
        if self.count_status is not None:
            data["count_status"] = self.count_status.value
        if self.bytes_status is not None:
            data["bytes_status"] = self.bytes_status.value
        if self.percent_status is not None:
            data["percent_status"] = self.percent_status.value
        if self.node is not None:
            data["node"] = self.node
        return data


def evaluate_connection(
    connection: ConnectionQueue, thresholds: QueueThresholds, node: str | None = None
) -> ConnectionVerdict:
    """The colour of one connection under ``thresholds`` (in ``node``'s view if given)."""
    # Run per connection of every canvas: the mode is compared directly, no properties.
    mode = thresholds.mode
    if mode is QueueMode.PERCENT:
        use = connection.percent_use
        percent = (
            Colour.GREEN
            if use is None
            else traffic_light(use, thresholds.percent_yellow, thresholds.percent_red)
        )
        return ConnectionVerdict(connection, percent, None, None, percent, node)
    count_status = bytes_status = None
    if mode is not QueueMode.BYTES:
        count_status = traffic_light(
            connection.flow_files, thresholds.count_yellow, thresholds.count_red
        )
    if mode is not QueueMode.COUNT:
        # Compared in bytes so a queue of exactly N MB meets an N MB threshold.
        bytes_status = traffic_light(
            connection.bytes,
            thresholds.bytes_yellow_mb * BYTES_PER_MB,
            thresholds.bytes_red_mb * BYTES_PER_MB,
        )
    if count_status is None:
        status = bytes_status or Colour.GREEN
    elif bytes_status is None or _RANK[count_status] >= _RANK[bytes_status]:
        status = count_status
    else:
        status = bytes_status
    return ConnectionVerdict(connection, status, count_status, bytes_status, None, node)

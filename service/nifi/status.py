"""Typed views of NiFi REST answers: connection queues and process-group counters.

Shapes parsed (NiFi REST API):

- ``ProcessGroupStatusEntity`` from ``GET /flow/process-groups/{id}/status?recursive=true``:
  ``processGroupStatus.aggregateSnapshot`` is a ``ProcessGroupStatusSnapshotDTO`` whose
  ``connectionStatusSnapshots[].connectionStatusSnapshot`` are
  ``ConnectionStatusSnapshotDTO`` (``flowFilesQueued``, ``bytesQueued``, ``queued``,
  ``percentUseCount``, ``percentUseBytes``…) and whose
  ``processGroupStatusSnapshots[].processGroupStatusSnapshot`` nest the same way. With
  ``nodewise=true`` a cluster adds ``processGroupStatus.nodeSnapshots[]``
  (``NodeProcessGroupStatusSnapshotDTO``: ``nodeId``, ``address``, ``apiPort``,
  ``statusSnapshot``). In the aggregate NiFi sums the counts over the connected nodes
  and keeps the highest ``percentUse*`` of any node.
- ``ProcessGroupEntity`` from ``GET /process-groups/{id}`` and
  ``GET /process-groups/{id}/process-groups`` (``processGroups[]``), counters in
  ``component`` (``runningCount``, ``stoppedCount``, ``disabledCount``, ``staleCount``,
  ``invalidCount``) and, for entities the user cannot read, on the entity itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from service.nifi.errors import NifiRequestError

BYTES_PER_MB = 1024 * 1024

# NiFi's FormatUtils.formatDataSize uses binary multiples and these unit names.
_UNIT_BYTES: dict[str, int] = {
    "bytes": 1,
    "byte": 1,
    "b": 1,
    "kb": 1024,
    "mb": 1024**2,
    "gb": 1024**3,
    "tb": 1024**4,
}
_COUNT_RE = re.compile(r"^\s*([\d,]+)")
_SIZE_RE = re.compile(r"\(\s*([\d,]*\.?\d+)\s*([A-Za-z]+)\s*\)")
# A node's queue in NodeDTO: "1,234 / 5.67 MB".
_NODE_SIZE_RE = re.compile(r"/\s*([\d,]*\.?\d+)\s*([A-Za-z]+)\s*$")


class ConnectionQueue(NamedTuple):
    """One connection's queue depth and where it sits on the canvas.

    A named tuple, not a frozen dataclass: one is made per connection of every canvas,
    and a frozen dataclass costs four times as much to build."""

    id: str
    name: str
    group_id: str
    group_path: str
    source_name: str
    destination_name: str
    flow_files: int
    bytes: int
    percent_count: int | None = None
    percent_bytes: int | None = None

    @property
    def percent_use(self) -> int | None:
        """The fuller of count and size against their back-pressure thresholds; None
        when neither threshold is set."""
        count, size = self.percent_count, self.percent_bytes
        if count is None:
            return size
        return count if size is None or count >= size else size


@dataclass(frozen=True, slots=True)
class NodeQueues:
    """One node's view of every connection (``nodewise=true``)."""

    node_id: str
    address: str
    api_port: int | None
    connections: list[ConnectionQueue]

    @property
    def label(self) -> str:
        """``address:port`` as NiFi names the node."""
        return self.address if self.api_port is None else f"{self.address}:{self.api_port}"


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The merged view and, when asked for on a cluster, each node's."""

    connections: list[ConnectionQueue]
    nodes: list[NodeQueues] | None = None


@dataclass(frozen=True, slots=True)
class ProcessGroupState:
    """A process group's component counters (NiFi counts descendants' components too)."""

    id: str
    name: str
    parent_id: str | None
    running: int
    stopped: int
    disabled: int
    invalid: int
    stale: int


def parse_queued_count(display: str | None) -> int | None:
    """Flow-file count from NiFi's ``queued`` display string (``"1,234 (5.67 MB)"`` → 1234)."""
    if not display:
        return None
    match = _COUNT_RE.match(display)
    return int(match.group(1).replace(",", "")) if match else None


def _size(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    factor = _UNIT_BYTES.get(match.group(2).lower())
    if factor is None:
        return None
    return round(float(match.group(1).replace(",", "")) * factor)


def parse_queued_bytes(display: str | None) -> int | None:
    """Bytes from the size in parentheses of NiFi's ``queued`` display string.

    ``"1,234 (5.67 MB)"`` → 5945425; units bytes/B, KB, MB, GB, TB are binary multiples
    as NiFi formats them. ``None`` when absent or unparsable.
    """
    return _size(_SIZE_RE.search(display)) if display else None


def parse_node_queued(display: str | None) -> tuple[int | None, int | None]:
    """Count and bytes of a node's ``queued`` (``"1,234 / 5.67 MB"``)."""
    if not display:
        return None, None
    return parse_queued_count(display), _size(_NODE_SIZE_RE.search(display))


def as_int(value: Any) -> int | None:
    """An integer JSON value (never a bool); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _int_or_none(value: Any) -> int | None:
    # Numbers are ints in nearly every snapshot: check that first (runs per connection).
    return value if type(value) is int else as_int(value)


def _text(value: Any) -> str:
    return value if type(value) is str else str(value or "")


def connection_from_snapshot(snapshot: Mapping[str, Any], group_path: str) -> ConnectionQueue:
    """A :class:`ConnectionQueue` from a ``ConnectionStatusSnapshotDTO``.

    The numeric ``flowFilesQueued``/``bytesQueued`` are read; the ``queued`` display
    string is parsed only for a number that is absent.
    """
    get = snapshot.get
    flow_files = _int_or_none(get("flowFilesQueued"))
    size = _int_or_none(get("bytesQueued"))
    if flow_files is None:
        flow_files = parse_queued_count(get("queued")) or 0
    if size is None:
        size = parse_queued_bytes(get("queued")) or 0
    return ConnectionQueue(
        _text(get("id")),
        _text(get("name")),
        _text(get("groupId")),
        group_path,
        _text(get("sourceName") or get("sourceId")),
        _text(get("destinationName") or get("destinationId")),
        flow_files,
        size,
        _int_or_none(get("percentUseCount")),
        _int_or_none(get("percentUseBytes")),
    )


def parse_queue_status(entity: Mapping[str, Any]) -> QueueStatus:
    """Every connection in a recursive ``ProcessGroupStatusEntity``, depth first, merged
    and (when present) per node.

    Paths follow the origin's convention for a canvas read from the root: the root
    group is ``/`` and a descendant names every group from the root down, the root's
    own name included (``/NiFi Flow/Ingest``).
    """
    status = entity.get("processGroupStatus")
    if not isinstance(status, Mapping):
        raise NifiRequestError("status answer has no processGroupStatus")
    root = status.get("aggregateSnapshot")
    if not isinstance(root, Mapping):
        raise NifiRequestError("status answer has no aggregateSnapshot")
    fallback = str(status.get("name") or "")
    nodes = status.get("nodeSnapshots")
    return QueueStatus(
        connections=_connections(root, fallback),
        nodes=None if not isinstance(nodes, list) else _node_queues(nodes, fallback),
    )


def _node_queues(items: list[Any], fallback: str) -> list[NodeQueues]:
    found = []
    for item in items:
        snapshot = item.get("statusSnapshot") if isinstance(item, Mapping) else None
        if not isinstance(snapshot, Mapping):
            continue
        found.append(
            NodeQueues(
                node_id=str(item.get("nodeId") or ""),
                address=str(item.get("address") or ""),
                api_port=as_int(item.get("apiPort")),
                connections=_connections(snapshot, fallback),
            )
        )
    return found


def _connections(root: Mapping[str, Any], fallback_name: str) -> list[ConnectionQueue]:
    root_name = str(root.get("name") or fallback_name or root.get("id") or "")
    connections: list[ConnectionQueue] = []
    # (snapshot, path of the group, path used as parent for its children)
    stack: list[tuple[Mapping[str, Any], str, str]] = [(root, "/", f"/{root_name}")]
    while stack:
        group, path, prefix = stack.pop()
        for item in group.get("connectionStatusSnapshots") or ():
            # dict, not Mapping: a decoded JSON document, and the ABC check is slow here.
            snapshot = item.get("connectionStatusSnapshot") if isinstance(item, dict) else None
            if isinstance(snapshot, dict):
                connections.append(connection_from_snapshot(snapshot, path))
        children = group.get("processGroupStatusSnapshots") or ()
        for item in reversed(children):
            child = item.get("processGroupStatusSnapshot") if isinstance(item, Mapping) else None
            if isinstance(child, Mapping):
                name = str(child.get("name") or child.get("id") or item.get("id") or "")
                child_prefix = f"{prefix}/{name}"
                stack.append((child, child_prefix, child_prefix))
    return connections


def _counter(component: Mapping[str, Any], entity: Mapping[str, Any], key: str) -> int:
    value = as_int(component.get(key))
    if value is None:
        value = as_int(entity.get(key))
    return value or 0


def parse_process_group(entity: Mapping[str, Any]) -> ProcessGroupState:
    """A :class:`ProcessGroupState` from a ``ProcessGroupEntity``.

    Counters come from ``component`` (as the origin reads them) and fall back to the
    entity's own copies, which NiFi also sends when the component is not readable;
    a missing counter is 0.
    """
    component = entity.get("component")
    if not isinstance(component, Mapping):
        component = {}
    group_id = str(entity.get("id") or component.get("id") or "")
    if not group_id:
        raise NifiRequestError("process group answer has no id")
    parent = component.get("parentGroupId")
    return ProcessGroupState(
        id=group_id,
        name=str(component.get("name") or group_id),
        parent_id=str(parent) if parent else None,
        running=_counter(component, entity, "runningCount"),
        stopped=_counter(component, entity, "stoppedCount"),
        disabled=_counter(component, entity, "disabledCount"),
        invalid=_counter(component, entity, "invalidCount"),
        stale=_counter(component, entity, "staleCount"),
    )


def parse_process_groups(listing: Mapping[str, Any]) -> list[ProcessGroupState]:
    """The groups of a ``ProcessGroupsEntity`` (``{"processGroups": [...]}``)."""
    groups = listing.get("processGroups")
    if not isinstance(groups, list):
        raise NifiRequestError("process group listing has no processGroups")
    return [parse_process_group(group) for group in groups if isinstance(group, Mapping)]

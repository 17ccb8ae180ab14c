"""Typed views of NiFi REST answers: connection queues and process-group counters.

Shapes parsed (NiFi REST API):

- ``ProcessGroupStatusEntity`` from ``GET /flow/process-groups/{id}/status?recursive=true``:
  ``processGroupStatus.aggregateSnapshot`` is a ``ProcessGroupStatusSnapshotDTO`` whose
  ``connectionStatusSnapshots[].connectionStatusSnapshot`` are
  ``ConnectionStatusSnapshotDTO`` (``flowFilesQueued``, ``bytesQueued``, ``queued``…) and
  whose ``processGroupStatusSnapshots[].processGroupStatusSnapshot`` nest the same way.
- ``ProcessGroupEntity`` from ``GET /process-groups/{id}`` and
  ``GET /process-groups/{id}/process-groups`` (``processGroups[]``), counters in
  ``component`` (``runningCount``, ``stoppedCount``, ``disabledCount``, ``staleCount``,
  ``invalidCount``) and, for entities the user cannot read, on the entity itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class ConnectionQueue:
    """One connection's queue depth and where it sits on the canvas."""

    id: str
    name: str
    group_id: str
    group_path: str
    source_name: str
    destination_name: str
    flow_files: int
    bytes: int


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


def parse_queued_bytes(display: str | None) -> int | None:
    """Bytes from the size in parentheses of NiFi's ``queued`` display string.

    ``"1,234 (5.67 MB)"`` → 5945425; units bytes/B, KB, MB, GB, TB are binary multiples
    as NiFi formats them. ``None`` when absent or unparsable.
    """
    if not display:
        return None
    match = _SIZE_RE.search(display)
    if match is None:
        return None
    factor = _UNIT_BYTES.get(match.group(2).lower())
    if factor is None:
        return None
    return round(float(match.group(1).replace(",", "")) * factor)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def connection_from_snapshot(snapshot: Mapping[str, Any], group_path: str) -> ConnectionQueue:
    """A :class:`ConnectionQueue` from a ``ConnectionStatusSnapshotDTO``.

    The numeric ``flowFilesQueued``/``bytesQueued`` are read; the ``queued`` display
    string is parsed only for a number that is absent.
    """
    connection_id = str(snapshot.get("id") or "")
    flow_files = _as_int(snapshot.get("flowFilesQueued"))
    size = _as_int(snapshot.get("bytesQueued"))
    if flow_files is None:
        flow_files = parse_queued_count(snapshot.get("queued")) or 0
    if size is None:
        size = parse_queued_bytes(snapshot.get("queued")) or 0
    return ConnectionQueue(
        id=connection_id,
        name=str(snapshot.get("name") or ""),
        group_id=str(snapshot.get("groupId") or ""),
        group_path=group_path,
        source_name=str(snapshot.get("sourceName") or snapshot.get("sourceId") or ""),
        destination_name=str(
            snapshot.get("destinationName") or snapshot.get("destinationId") or ""
        ),
        flow_files=flow_files,
        bytes=size,
    )


def parse_queue_status(entity: Mapping[str, Any]) -> list[ConnectionQueue]:
    """Every connection in a recursive ``ProcessGroupStatusEntity``, depth first.

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

    root_name = str(root.get("name") or status.get("name") or root.get("id") or "")
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
    value = _as_int(component.get(key))
    if value is None:
        value = _as_int(entity.get(key))
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

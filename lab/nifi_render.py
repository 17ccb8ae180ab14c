"""NiFi REST JSON for a lab canvas: the entity and DTO shapes of the NiFi REST API
(``ProcessGroupStatusEntity``, ``ProcessGroupEntity``, ``ConnectionEntity``,
``ProcessGroupFlowEntity``, ``AboutEntity``), with the display strings NiFi formats."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from lab.nifi_topology import (
    BACK_PRESSURE_OBJECTS,
    LabConnection,
    LabProcessGroup,
    QueueValues,
    total_values,
)

# Which queue values an answer shows: the whole queue, a cluster's merge, one node's.
QueueView = Callable[[LabConnection], QueueValues]
_DATA_UNITS = (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024))
_PERMISSIONS = {"canRead": True, "canWrite": True}
_ZERO_TRAFFIC = "0 (0 bytes)"


def _decimal(value: float) -> str:
    # java.text.NumberFormat: grouping, at most two fraction digits, no trailing zeros.
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".")


def format_data_size(size: float) -> str:
    """NiFi's ``FormatUtils.formatDataSize``: the largest binary unit with a value
    above 1 (``5.67 MB``, ``1,024 KB`` for exactly 1 MiB, ``0 bytes``)."""
    for unit, factor in _DATA_UNITS:
        if size / factor > 1:
            return f"{_decimal(size / factor)} {unit}"
    return f"{_decimal(size)} bytes"


def format_queued(flow_files: int, size: int) -> str:
    """The ``queued`` display string: ``1,234 (5.67 MB)``."""
    return f"{flow_files:,} ({format_data_size(size)})"


def _size_property(size: int) -> str:
    """A data size as a NiFi property value (``1 GB``, ``512 MB``, ``100 B``)."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def _refreshed() -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime())


def _totals(group: LabProcessGroup, view: QueueView) -> tuple[int, int]:
    files = size = 0
    for node in group.walk():
        for connection in node.connections:
            values = view(connection)
            files += values.flow_files
            size += values.bytes
    return files, size


def connection_snapshot(
    connection: LabConnection, *, numeric: bool = True, view: QueueView = total_values
) -> dict[str, Any]:
    """A ``ConnectionStatusSnapshotDTO``; ``numeric=False`` leaves out
    ``flowFilesQueued``/``bytesQueued`` as older NiFi versions do, and a connection
    without a back-pressure threshold has no ``percentUse*`` for it."""
    values = view(connection)
    snapshot: dict[str, Any] = {
        "id": connection.id,
        "groupId": connection.group_id,
        "name": connection.name,
        "sourceId": connection.source_id,
        "sourceName": connection.source_name,
        "destinationId": connection.destination_id,
        "destinationName": connection.destination_name,
        "flowFilesIn": 0,
        "bytesIn": 0,
        "input": _ZERO_TRAFFIC,
        "flowFilesOut": 0,
        "bytesOut": 0,
        "output": _ZERO_TRAFFIC,
        "queued": format_queued(values.flow_files, values.bytes),
        "queuedSize": format_data_size(values.bytes),
        "queuedCount": f"{values.flow_files:,}",
    }
    if values.percent_count is not None:
        snapshot["percentUseCount"] = values.percent_count
    if values.percent_bytes is not None:
        snapshot["percentUseBytes"] = values.percent_bytes
    if numeric:
        snapshot["flowFilesQueued"] = values.flow_files
        snapshot["bytesQueued"] = values.bytes
    return snapshot


def _group_snapshot(
    group: LabProcessGroup, *, recursive: bool, numeric: bool, view: QueueView
) -> dict[str, Any]:
    # Without recursion NiFi still lists the child groups, with their totals only.
    files, size = _totals(group, view)
    snapshot: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "connectionStatusSnapshots": [
            {
                "id": connection.id,
                "groupId": group.id,
                "connectionStatusSnapshot": connection_snapshot(
                    connection, numeric=numeric, view=view
                ),
                "canRead": True,
            }
            for connection in group.connections
        ],
        "processorStatusSnapshots": [],
        "processGroupStatusSnapshots": [
            {
                "id": child.id,
                "processGroupStatusSnapshot": (
                    _group_snapshot(child, recursive=True, numeric=numeric, view=view)
                    if recursive
                    else _group_totals_snapshot(child, numeric=numeric, view=view)
                ),
                "canRead": True,
            }
            for child in group.children
        ],
        "remoteProcessGroupStatusSnapshots": [],
        "inputPortStatusSnapshots": [],
        "outputPortStatusSnapshots": [],
    }
    snapshot.update(_aggregate_fields(files, size, numeric=numeric))
    return snapshot


def _group_totals_snapshot(
    group: LabProcessGroup, *, numeric: bool, view: QueueView = total_values
) -> dict[str, Any]:
    files, size = _totals(group, view)
    snapshot: dict[str, Any] = {"id": group.id, "name": group.name}
    snapshot.update(_aggregate_fields(files, size, numeric=numeric))
    return snapshot


def _aggregate_fields(files: int, size: int, *, numeric: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "flowFilesIn": 0,
        "bytesIn": 0,
        "input": _ZERO_TRAFFIC,
        "queued": format_queued(files, size),
        "queuedCount": f"{files:,}",
        "queuedSize": format_data_size(size),
        "flowFilesOut": 0,
        "bytesOut": 0,
        "output": _ZERO_TRAFFIC,
        "activeThreadCount": 0,
        "terminatedThreadCount": 0,
    }
    if numeric:
        fields["flowFilesQueued"] = files
        fields["bytesQueued"] = size
    return fields


def status_entity(
    group: LabProcessGroup,
    *,
    recursive: bool,
    numeric: bool = True,
    view: QueueView = total_values,
    node_views: Sequence[tuple[str, str, int, QueueView]] = (),
) -> dict[str, Any]:
    """``GET /flow/process-groups/{id}/status``: a ``ProcessGroupStatusEntity``;
    ``node_views`` (node id, address, API port, view) add ``nodeSnapshots``, as
    ``nodewise=true`` does on a cluster."""
    status: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "statsLastRefreshed": _refreshed(),
        "aggregateSnapshot": _group_snapshot(
            group, recursive=recursive, numeric=numeric, view=view
        ),
    }
    if node_views:
        status["nodeSnapshots"] = [
            {
                "nodeId": node_id,
                "address": address,
                "apiPort": api_port,
                "statusSnapshot": _group_snapshot(
                    group, recursive=recursive, numeric=numeric, view=node_view
                ),
            }
            for node_id, address, api_port, node_view in node_views
        ]
    return {"processGroupStatus": status, "canRead": True}


def _counts_fields(group: LabProcessGroup) -> dict[str, int]:
    counts = group.counts()
    return {
        "runningCount": counts.running,
        "stoppedCount": counts.stopped,
        "invalidCount": counts.invalid,
        "disabledCount": counts.disabled,
        "activeRemotePortCount": 0,
        "inactiveRemotePortCount": 0,
        "upToDateCount": 0,
        "locallyModifiedCount": 0,
        "staleCount": counts.stale,
        "locallyModifiedAndStaleCount": 0,
        "syncFailureCount": 0,
        "localInputPortCount": 0,
        "localOutputPortCount": 0,
        "publicInputPortCount": 0,
        "publicOutputPortCount": 0,
        "inputPortCount": 0,
        "outputPortCount": 0,
    }


def process_group_entity(group: LabProcessGroup, api_root: str) -> dict[str, Any]:
    """``GET /process-groups/{id}``: a ``ProcessGroupEntity`` (counters both in
    ``component`` and on the entity, as NiFi sends them)."""
    counts = _counts_fields(group)
    component: dict[str, Any] = {
        "id": group.id,
        "parentGroupId": group.parent_id,
        "position": {"x": 0.0, "y": 0.0},
        "name": group.name,
        "comments": "",
        "flowfileConcurrency": "UNBOUNDED",
        "flowfileOutboundPolicy": "STREAM_WHEN_AVAILABLE",
        "defaultFlowFileExpiration": "0 sec",
        "defaultBackPressureObjectThreshold": BACK_PRESSURE_OBJECTS,
        "defaultBackPressureDataSizeThreshold": "1 GB",
        **counts,
    }
    return {
        "revision": {"version": 0},
        "id": group.id,
        "uri": f"{api_root}/process-groups/{group.id}",
        "position": {"x": 0.0, "y": 0.0},
        "permissions": _PERMISSIONS,
        "bulletins": [],
        "component": component,
        "status": {
            "id": group.id,
            "name": group.name,
            "statsLastRefreshed": _refreshed(),
            "aggregateSnapshot": _group_totals_snapshot(group, numeric=True),
        },
        **counts,
    }


def process_groups_entity(group: LabProcessGroup, api_root: str) -> dict[str, Any]:
    """``GET /process-groups/{id}/process-groups``: a ``ProcessGroupsEntity``."""
    return {"processGroups": [process_group_entity(child, api_root) for child in group.children]}


def _connectable(component_id: str, name: str, group_id: str) -> dict[str, Any]:
    return {
        "id": component_id,
        "type": "PROCESSOR",
        "groupId": group_id,
        "name": name,
        "running": True,
        "comments": "",
    }


def connection_entity(connection: LabConnection, api_root: str) -> dict[str, Any]:
    """A ``ConnectionEntity`` with its ``ConnectionStatusDTO``."""
    group_id = connection.group_id
    return {
        "revision": {"version": 0},
        "id": connection.id,
        "uri": f"{api_root}/connections/{connection.id}",
        "permissions": _PERMISSIONS,
        "component": {
            "id": connection.id,
            "parentGroupId": group_id,
            "name": connection.name,
            "source": _connectable(connection.source_id, connection.source_name, group_id),
            "destination": _connectable(
                connection.destination_id, connection.destination_name, group_id
            ),
            "selectedRelationships": ["success"],
            "availableRelationships": ["success"],
            "backPressureObjectThreshold": connection.back_pressure_objects,
            "backPressureDataSizeThreshold": _size_property(connection.back_pressure_bytes),
            "flowFileExpiration": "0 sec",
            "prioritizers": [],
            "bends": [],
            "loadBalanceStrategy": "DO_NOT_LOAD_BALANCE",
            "loadBalanceCompression": "DO_NOT_COMPRESS",
            "loadBalanceStatus": "LOAD_BALANCE_NOT_CONFIGURED",
        },
        "status": {
            "id": connection.id,
            "groupId": group_id,
            "name": connection.name,
            "statsLastRefreshed": _refreshed(),
            "sourceId": connection.source_id,
            "sourceName": connection.source_name,
            "destinationId": connection.destination_id,
            "destinationName": connection.destination_name,
            "aggregateSnapshot": connection_snapshot(connection),
        },
        "bends": [],
        "labelIndex": 1,
        "zIndex": 0,
        "sourceId": connection.source_id,
        "sourceGroupId": group_id,
        "sourceType": "PROCESSOR",
        "destinationId": connection.destination_id,
        "destinationGroupId": group_id,
        "destinationType": "PROCESSOR",
    }


def connections_entity(group: LabProcessGroup, api_root: str) -> dict[str, Any]:
    """``GET /process-groups/{id}/connections``: a ``ConnectionsEntity``."""
    return {"connections": [connection_entity(c, api_root) for c in group.connections]}


def _breadcrumb(group: LabProcessGroup) -> dict[str, Any]:
    crumb: dict[str, Any] = {
        "id": group.id,
        "permissions": _PERMISSIONS,
        "breadcrumb": {"id": group.id, "name": group.name},
    }
    if group.parent is not None:
        crumb["parentBreadcrumb"] = _breadcrumb(group.parent)
    return crumb


def flow_entity(group: LabProcessGroup, api_root: str) -> dict[str, Any]:
    """``GET /flow/process-groups/{id}``: a ``ProcessGroupFlowEntity``."""
    return {
        "permissions": _PERMISSIONS,
        "processGroupFlow": {
            "id": group.id,
            "uri": f"{api_root}/flow/process-groups/{group.id}",
            "parentGroupId": group.parent_id,
            "breadcrumb": _breadcrumb(group),
            "flow": {
                "processGroups": [process_group_entity(c, api_root) for c in group.children],
                "remoteProcessGroups": [],
                "processors": [],
                "inputPorts": [],
                "outputPorts": [],
                "connections": [connection_entity(c, api_root) for c in group.connections],
                "labels": [],
                "funnels": [],
            },
            "lastRefreshed": _refreshed(),
        },
    }


def about_entity(version: str, api_root: str) -> dict[str, Any]:
    """``GET /flow/about``: an ``AboutEntity``."""
    return {
        "about": {
            "title": "NiFi",
            "version": version,
            "uri": f"{api_root}/",
            "contentViewerUrl": "../nifi-content-viewer/",
            "timezone": "UTC",
            "buildTag": f"nifi-{version}",
            "buildRevision": "lab",
            "buildBranch": "lab",
            "buildTimestamp": "01/01/2025 00:00:00 UTC",
        }
    }

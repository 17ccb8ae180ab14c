"""Parsing NiFi answers: queued display strings, numeric fields, paths, counters."""

from __future__ import annotations

from typing import Any

import pytest

from service.nifi.errors import NifiRequestError
from service.nifi.status import (
    parse_process_group,
    parse_process_groups,
    parse_queue_status,
    parse_queued_bytes,
    parse_queued_count,
)

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("display", "count", "size"),
    [
        ("0 (0 bytes)", 0, 0),
        ("12 (512 bytes)", 12, 512),
        ("3 (700 B)", 3, 700),
        ("512 (1.5 KB)", 512, 1536),
        ("1,234 (5.67 MB)", 1234, round(5.67 * MB)),
        ("100,000 (1.5 GB)", 100_000, round(1.5 * 1024**3)),
        ("2 (1,024 KB)", 2, 1024 * 1024),
        ("7 (2 TB)", 7, 2 * 1024**4),
        ("7 (2 tb)", 7, 2 * 1024**4),
        ("1,000,000 (0.01 MB)", 1_000_000, round(0.01 * MB)),
    ],
)
def test_queued_display_units(display: str, count: int, size: int) -> None:
    assert parse_queued_count(display) == count
    assert parse_queued_bytes(display) == size


@pytest.mark.parametrize("display", [None, "", "n/a", "12 (lots)", "12 (3 PB)"])
def test_unparsable_sizes_are_none(display: str | None) -> None:
    assert parse_queued_bytes(display) is None


def test_unparsable_counts_are_none() -> None:
    assert parse_queued_count("n/a") is None
    assert parse_queued_count(None) is None


def _snapshot(conn_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": conn_id,
        "connectionStatusSnapshot": {
            "id": conn_id,
            "groupId": fields.pop("groupId", "g"),
            "name": conn_id,
            "sourceName": "src",
            "destinationName": "dst",
            **fields,
        },
    }


def _entity(root: dict[str, Any]) -> dict[str, Any]:
    return {"processGroupStatus": {"id": root["id"], "aggregateSnapshot": root}}


def test_numeric_fields_win_over_the_display_string() -> None:
    root = {
        "id": "r",
        "name": "NiFi Flow",
        "connectionStatusSnapshots": [
            _snapshot("c", flowFilesQueued=5, bytesQueued=10, queued="999 (9 GB)")
        ],
    }
    [conn] = parse_queue_status(_entity(root)).connections
    assert (conn.flow_files, conn.bytes) == (5, 10)


def test_display_string_fills_only_the_missing_number() -> None:
    root = {
        "id": "r",
        "name": "NiFi Flow",
        "connectionStatusSnapshots": [
            _snapshot("both-missing", queued="1,234 (5.67 MB)"),
            _snapshot("bytes-missing", flowFilesQueued=3, queued="1,234 (1 KB)"),
        ],
    }
    first, second = parse_queue_status(_entity(root)).connections
    assert (first.flow_files, first.bytes) == (1234, round(5.67 * MB))
    assert (second.flow_files, second.bytes) == (3, 1024)


def test_nested_groups_give_paths_from_the_root() -> None:
    grandchild = {
        "id": "gc",
        "name": "Parse",
        "connectionStatusSnapshots": [_snapshot("deep", groupId="gc", flowFilesQueued=1)],
    }
    child = {
        "id": "ch",
        "name": "Ingest",
        "connectionStatusSnapshots": [_snapshot("mid", groupId="ch", flowFilesQueued=1)],
        "processGroupStatusSnapshots": [{"id": "gc", "processGroupStatusSnapshot": grandchild}],
    }
    root = {
        "id": "r",
        "name": "NiFi Flow",
        "connectionStatusSnapshots": [_snapshot("top", groupId="r", flowFilesQueued=1)],
        "processGroupStatusSnapshots": [{"id": "ch", "processGroupStatusSnapshot": child}],
    }
    paths = {c.id: c.group_path for c in parse_queue_status(_entity(root)).connections}
    assert paths == {"top": "/", "mid": "/NiFi Flow/Ingest", "deep": "/NiFi Flow/Ingest/Parse"}


def test_a_status_without_snapshot_is_a_request_error() -> None:
    with pytest.raises(NifiRequestError):
        parse_queue_status({"processGroupStatus": {"id": "r"}})
    with pytest.raises(NifiRequestError):
        parse_queue_status({})


def test_counters_come_from_the_component_then_the_entity() -> None:
    entity = {
        "id": "pg",
        "component": {"id": "pg", "name": "Ingest", "parentGroupId": "root-id", "runningCount": 4},
        "runningCount": 99,
        "stoppedCount": 2,
        "staleCount": 1,
    }
    group = parse_process_group(entity)
    assert (group.name, group.parent_id) == ("Ingest", "root-id")
    assert (group.running, group.stopped, group.stale, group.disabled, group.invalid) == (
        4,
        2,
        1,
        0,
        0,
    )


def test_unreadable_group_falls_back_to_its_id() -> None:
    group = parse_process_group({"id": "pg", "runningCount": 1})
    assert (group.name, group.running, group.parent_id) == ("pg", 1, None)


def test_group_listing_must_have_process_groups() -> None:
    assert [g.id for g in parse_process_groups({"processGroups": [{"id": "a"}, {"id": "b"}]})] == [
        "a",
        "b",
    ]
    with pytest.raises(NifiRequestError):
        parse_process_groups({"groups": []})

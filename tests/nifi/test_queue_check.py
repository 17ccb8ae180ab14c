"""Queue traffic lights as pure functions: every mode, thresholds equal and zero."""

from __future__ import annotations

import json

import pytest

from service.nifi.queue_check import (
    Colour,
    QueueMode,
    QueueThresholds,
    evaluate_connection,
    traffic_light,
    worst,
)
from service.nifi.queue_report import (
    ClusterQueueResult,
    evaluate_cluster,
    summarise,
    unreachable_cluster,
)
from service.nifi.status import ConnectionQueue

MB = 1024 * 1024
G, Y, R = Colour.GREEN, Colour.YELLOW, Colour.RED


def conn(flow_files: int = 0, size: int = 0, conn_id: str = "c") -> ConnectionQueue:
    return ConnectionQueue(
        id=conn_id,
        name=conn_id,
        group_id="g",
        group_path="/",
        source_name="s",
        destination_name="d",
        flow_files=flow_files,
        bytes=size,
    )


@pytest.mark.parametrize(
    ("value", "colour"),
    [(0, G), (999, G), (1000, Y), (1001, Y), (9999, Y), (10000, R), (10**9, R)],
)
def test_value_at_a_threshold_takes_its_colour(value: int, colour: Colour) -> None:
    assert traffic_light(value, 1000, 10000) is colour


@pytest.mark.parametrize(
    ("mode", "flow_files", "size", "expected", "count_status", "bytes_status"),
    [
        (QueueMode.COUNT, 999, 500 * MB, G, G, None),
        (QueueMode.COUNT, 1000, 0, Y, Y, None),
        (QueueMode.COUNT, 10000, 0, R, R, None),
        (QueueMode.BYTES, 10**6, 10 * MB - 1, G, None, G),
        (QueueMode.BYTES, 0, 10 * MB, Y, None, Y),
        (QueueMode.BYTES, 0, 100 * MB, R, None, R),
        (QueueMode.BOTH, 1000, 100 * MB, R, Y, R),
        (QueueMode.BOTH, 10000, 10 * MB, R, R, Y),
        (QueueMode.BOTH, 999, 10 * MB, Y, G, Y),
        (QueueMode.BOTH, 0, 0, G, G, G),
    ],
)
def test_modes(
    mode: QueueMode,
    flow_files: int,
    size: int,
    expected: Colour,
    count_status: Colour | None,
    bytes_status: Colour | None,
) -> None:
    verdict = evaluate_connection(conn(flow_files, size), QueueThresholds(mode=mode))
    assert (verdict.status, verdict.count_status, verdict.bytes_status) == (
        expected,
        count_status,
        bytes_status,
    )


@pytest.mark.parametrize(
    ("yellow", "red", "value", "colour"),
    [(0, 0, 0, R), (0, 10, 0, Y), (0, 10, 10, R), (5, 5, 4, G), (5, 5, 5, R)],
)
def test_zero_and_equal_thresholds_are_honoured(
    yellow: int, red: int, value: int, colour: Colour
) -> None:
    count = QueueThresholds(mode=QueueMode.COUNT, count_yellow=yellow, count_red=red)
    assert evaluate_connection(conn(flow_files=value), count).status is colour
    size = QueueThresholds(mode=QueueMode.BYTES, bytes_yellow_mb=yellow, bytes_red_mb=red)
    assert evaluate_connection(conn(size=value * MB), size).status is colour


def test_fractional_megabyte_thresholds() -> None:
    thresholds = QueueThresholds(mode=QueueMode.BYTES, bytes_yellow_mb=0.5, bytes_red_mb=1.5)
    assert evaluate_connection(conn(size=MB // 2 - 1), thresholds).status is G
    assert evaluate_connection(conn(size=MB // 2), thresholds).status is Y
    assert evaluate_connection(conn(size=MB + MB // 2), thresholds).status is R


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count_yellow": -1},
        {"count_yellow": 11, "count_red": 10},
        {"bytes_yellow_mb": 101.0},
        {"bytes_red_mb": -0.1, "bytes_yellow_mb": -0.2},
    ],
)
def test_invalid_thresholds_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        QueueThresholds(**kwargs)  # type: ignore[arg-type]


def test_worst_of() -> None:
    assert worst([]) is G
    assert worst([G, Y, G]) is Y
    assert worst([Y, R, G]) is R


def test_cluster_keeps_only_yellow_and_red_worst_first() -> None:
    connections = [
        conn(5, conn_id="green"),
        conn(1500, conn_id="yellow-small"),
        conn(20000, conn_id="red"),
        conn(5000, conn_id="yellow-big"),
    ]
    result = evaluate_cluster(
        cluster_id="c",
        cluster_name="C",
        connections=connections,
        thresholds=QueueThresholds(),
        answered_by="node-1",
    )
    assert result.status is R
    assert result.connection_count == 4
    assert result.connection_summary.to_dict() == {"green": 1, "yellow": 2, "red": 1}
    assert [v.connection.id for v in result.connections] == ["red", "yellow-big", "yellow-small"]
    everything = evaluate_cluster(
        cluster_id="c",
        cluster_name="C",
        connections=connections,
        thresholds=QueueThresholds(),
        include_all_connections=True,
    )
    assert len(everything.connections) == 4


def test_empty_cluster_is_green() -> None:
    result = evaluate_cluster(
        cluster_id="c", cluster_name="C", connections=[], thresholds=QueueThresholds()
    )
    assert (result.status, result.connection_count, result.outcome) == (G, 0, "ok")


def _cluster(status: Colour) -> ClusterQueueResult:
    if status is R:
        return unreachable_cluster(cluster_id="x", cluster_name="X", error="boom")
    flow_files = 0 if status is G else 1000
    return evaluate_cluster(
        cluster_id=status.value,
        cluster_name=status.value,
        connections=[conn(flow_files)],
        thresholds=QueueThresholds(),
    )


@pytest.mark.parametrize(
    ("colours", "overall", "outcome"),
    [
        ([], G, "ok"),
        ([G, G], G, "ok"),
        ([G, Y], Y, "warning"),
        ([Y, R, G], R, "critical"),
    ],
)
def test_report_rolls_clusters_up(colours: list[Colour], overall: Colour, outcome: str) -> None:
    report = summarise([_cluster(c) for c in colours], QueueThresholds())
    assert (report.status, report.outcome) == (overall, outcome)
    assert report.summary.to_dict() == {
        "green": colours.count(G),
        "yellow": colours.count(Y),
        "red": colours.count(R),
    }


def test_report_is_json_with_the_origin_keys() -> None:
    both = QueueThresholds(mode=QueueMode.BOTH)
    yellow_cluster = evaluate_cluster(
        cluster_id="y", cluster_name="Y", connections=[conn(1000)], thresholds=both
    )
    report = summarise([yellow_cluster, _cluster(R)], both)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["overall_status"] == "red"
    assert data["thresholds"] == {
        "mode": "both",
        "count_yellow": 1000,
        "count_red": 10000,
        "bytes_yellow_mb": 10.0,
        "bytes_red_mb": 100.0,
    }
    unreachable = data["clusters"][1]
    assert (unreachable["status"], unreachable["error"], unreachable["connections"]) == (
        "red",
        "boom",
        [],
    )
    [yellow] = data["clusters"][0]["connections"]
    assert yellow["count_status"] == "yellow"
    assert yellow["bytes_status"] == "green"
    assert set(yellow) >= {"group_path", "source", "destination", "flow_files_queued", "queued_mb"}

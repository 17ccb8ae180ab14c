"""The two NiFi checks end to end against the lab: exact colours and verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from lab.nifi import FailureMode, LabFlow, LabInstance, NifiLab
from service.nifi.checks import check_cluster_queues, check_process_group, check_queues
from service.nifi.configs import CheckProcessGroupConfig, CheckQueuesConfig
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import NifiClusterUnavailable, NifiRequestError
from service.nifi.pool import NifiClientPool
from service.nifi.queue_check import QueueMode, QueueThresholds
from tests.nifi.conftest import cluster_of, endpoint_for

MB = 1024 * 1024

# name: (flow files, bytes, colour by count, colour by bytes) under the default thresholds
QUEUES = {
    "empty": (0, 0, "green", "green"),
    "count-below-yellow": (999, 0, "green", "green"),
    "count-at-yellow": (1000, 0, "yellow", "green"),
    "count-below-red": (9999, 0, "yellow", "green"),
    "count-at-red": (10000, 0, "red", "green"),
    "bytes-below-yellow": (0, 10 * MB - 1, "green", "green"),
    "bytes-at-yellow": (0, 10 * MB, "green", "yellow"),
    "bytes-at-red": (0, 100 * MB, "green", "red"),
    "count-yellow-bytes-red": (1000, 100 * MB, "yellow", "red"),
    "count-red-bytes-yellow": (10000, 10 * MB, "red", "yellow"),
}
RANK = {"green": 0, "yellow": 1, "red": 2}


def queue_flow(queues: dict[str, tuple[int, int, str, str]]) -> LabFlow:
    flow = LabFlow(seed=1)
    ingest = flow.add_group("Ingest", running=1)
    for index, (name, (flow_files, size, _, _)) in enumerate(queues.items()):
        group = ingest.id if index % 2 else "root"
        flow.add_connection(name, group, flow_files=flow_files, bytes=size)
    return flow


def single_node_cluster(lab: NifiLab, name: str, flow: LabFlow) -> tuple[NifiCluster, LabInstance]:
    node = lab.add_instance(name, flow=flow)
    return cluster_of(name, endpoint_for(node.name, node.url)), node


async def colours(
    pool: NifiClientPool, cluster: NifiCluster, thresholds: QueueThresholds
) -> dict[str, str]:
    result = await check_cluster_queues(pool, cluster, thresholds, include_all_connections=True)
    return {verdict.connection.name: verdict.status.value for verdict in result.connections}


@pytest.mark.parametrize("mode", [QueueMode.COUNT, QueueMode.BYTES, QueueMode.BOTH])
async def test_known_depths_give_exact_colours_in_every_mode(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str], mode: QueueMode
) -> None:
    cluster, _ = single_node_cluster(lab, unique("colours"), queue_flow(QUEUES))
    expected = {}
    for name, (_, _, by_count, by_bytes) in QUEUES.items():
        if mode is QueueMode.COUNT:
            expected[name] = by_count
        elif mode is QueueMode.BYTES:
            expected[name] = by_bytes
        else:
            expected[name] = max(by_count, by_bytes, key=RANK.__getitem__)
    assert await colours(pool, cluster, QueueThresholds(mode=mode)) == expected


async def test_zero_thresholds_over_the_wire(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    queues = {"zero": (0, 0, "", ""), "one": (1, 1, "", "")}
    cluster, _ = single_node_cluster(lab, unique("zero"), queue_flow(queues))
    all_red = QueueThresholds(mode=QueueMode.BOTH, count_yellow=0, count_red=0)
    assert await colours(pool, cluster, all_red) == {"zero": "red", "one": "red"}
    yellow_from_zero = QueueThresholds(mode=QueueMode.COUNT, count_yellow=0, count_red=1)
    assert await colours(pool, cluster, yellow_from_zero) == {"zero": "yellow", "one": "red"}
    bytes_zero = QueueThresholds(mode=QueueMode.BYTES, bytes_yellow_mb=0, bytes_red_mb=0)
    assert await colours(pool, cluster, bytes_zero) == {"zero": "red", "one": "red"}


async def test_display_strings_are_parsed_when_numbers_are_absent(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    # Sizes NiFi displays exactly, so the parsed value equals the real one.
    queues = {
        "small": (12, 512, "", ""),
        "kb": (999, 1536, "", ""),
        "mb-below": (1000, int(9.5 * MB), "", ""),
        "mb-at": (0, 10 * MB, "", ""),
        "gb": (10000, int(1.5 * 1024 * MB), "", ""),
        "tb": (1_234_567, 2 * 1024 * 1024 * MB, "", ""),
    }
    numeric, _ = single_node_cluster(lab, unique("numeric"), queue_flow(queues))
    display, node = single_node_cluster(lab, unique("display"), queue_flow(queues))
    node.numeric_queue_fields = False
    for mode in QueueMode:
        thresholds = QueueThresholds(mode=mode)
        assert await colours(pool, display, thresholds) == await colours(pool, numeric, thresholds)
    result = await check_cluster_queues(
        pool, display, QueueThresholds(), include_all_connections=True
    )
    by_name = {v.connection.name: v.connection for v in result.connections}
    assert (by_name["tb"].flow_files, by_name["tb"].bytes) == (1_234_567, 2 * 1024**4)
    assert by_name["mb-below"].bytes == int(9.5 * MB)


async def test_one_cluster_down_leaves_the_others_alone(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    green, _ = single_node_cluster(lab, unique("green"), queue_flow({"q": (5, 0, "", "")}))
    yellow, _ = single_node_cluster(lab, unique("yellow"), queue_flow({"q": (5000, 0, "", "")}))
    down_nodes = lab.add_cluster(unique("down"), members=2)
    for node in down_nodes:
        node.fail(FailureMode.DOWN)
    down = cluster_of("down", *(endpoint_for(n.name, n.url) for n in down_nodes))
    config = CheckQueuesConfig(concurrency=2)
    report = await check_queues(
        pool, [green, yellow, down], config.thresholds(), concurrency=config.concurrency
    )
    assert [c.status.value for c in report.clusters] == ["green", "yellow", "red"]
    assert (report.status.value, report.outcome) == ("red", "critical")
    assert report.summary.to_dict() == {"green": 1, "yellow": 1, "red": 1}
    failed = report.clusters[2]
    assert failed.answered_by is None
    assert failed.error is not None
    assert "HTTP 503" in failed.error
    assert failed.unavailable_members == tuple(n.name for n in down_nodes)
    assert report.clusters[1].connections[0].connection.flow_files == 5000


async def test_failover_is_reported_in_the_cluster_result(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("fo"), members=2, flow=queue_flow({"q": (20000, 0, "", "")}))
    nodes[0].fail(FailureMode.ERROR)
    cluster = cluster_of("fo", *(endpoint_for(n.name, n.url) for n in nodes))
    result = await check_cluster_queues(pool, cluster, QueueThresholds())
    assert (result.status.value, result.answered_by) == ("red", nodes[1].name)
    assert result.unavailable_members == (nodes[0].name,)


async def test_large_canvas_result_stays_small(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    flow = LabFlow.generate(42, groups=40, connections=5000, max_depth=4)
    for connection in list(flow.connections.values())[::100]:
        flow.set_queue(connection.id, flow_files=25_000)
    cluster, node = single_node_cluster(lab, unique("big"), flow)
    report = await check_queues(pool, [cluster], QueueThresholds())
    [result] = report.clusters
    assert result.connection_count == 5000
    assert result.connection_summary.to_dict() == {"green": 4950, "yellow": 0, "red": 50}
    assert len(result.connections) == 50
    assert len(json.dumps(report.to_dict()).encode()) < 64 * 1024
    # The whole canvas in one status request, beside it the cluster summary.
    assert node.request_count == 2


def pg_flow() -> LabFlow:
    flow = LabFlow(seed=2)
    ingest = flow.add_group("Ingest", running=2, group_id="ingest")
    flow.add_group("Parse", ingest.id, running=1, group_id="parse")
    flow.add_group("Export", running=1, group_id="export")
    flow.set_counts("root", running=1)
    return flow


def pg_config(**values: object) -> CheckProcessGroupConfig:
    return CheckProcessGroupConfig.model_validate({"cluster_id": "pg", **values})


async def test_process_group_all_running_passes(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    cluster, _ = single_node_cluster(lab, unique("pg"), pg_flow())
    report = await check_process_group(pool, cluster, pg_config(process_group_id="root"))
    assert report.passed
    data = report.to_dict()
    assert (data["process_group_name"], data["process_group_path"]) == ("NiFi Flow", "/")
    assert data["counters"]["running_count"] == 5
    assert [(c["name"], c["path"]) for c in data["children"]] == [
        ("Ingest", "/NiFi Flow/Ingest"),
        ("Export", "/NiFi Flow/Export"),
    ]


async def test_direct_children_versus_recursive(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    flow = pg_flow()
    flow.set_counts("parse", stopped=1)
    cluster, _ = single_node_cluster(lab, unique("pg"), flow)

    direct = await check_process_group(pool, cluster, pg_config(process_group_id="ingest"))
    assert not direct.passed
    assert direct.group.violations == ("stopped_count",)  # NiFi counts descendants
    assert [(c.name, c.passed) for c in direct.children] == [("Parse", False)]

    top = await check_process_group(pool, cluster, pg_config(process_group_id="root"))
    assert [(c.name, c.passed) for c in top.children] == [("Ingest", False), ("Export", True)]

    deep = await check_process_group(
        pool, cluster, pg_config(process_group_id="root", recursive=True)
    )
    assert [(c.path, c.passed) for c in deep.children] == [
        ("/NiFi Flow/Ingest", False),
        ("/NiFi Flow/Export", True),
        ("/NiFi Flow/Ingest/Parse", False),
    ]

    alone = await check_process_group(
        pool, cluster, pg_config(process_group_id="export", check_children=False)
    )
    assert alone.passed
    assert "children" not in alone.to_dict()


async def test_stale_descendant_fails_running_but_not_enabled(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    flow = pg_flow()
    flow.set_counts("parse", stale=True)
    cluster, _ = single_node_cluster(lab, unique("pg"), flow)
    running = await check_process_group(
        pool, cluster, pg_config(process_group_id="ingest", process_group_path="/NiFi Flow/Ingest")
    )
    assert running.group.violations == ("stale_count",)
    assert running.to_dict()["process_group_path"] == "/NiFi Flow/Ingest"
    assert running.children[0].path == "/NiFi Flow/Ingest/Parse"
    enabled = await check_process_group(
        pool, cluster, pg_config(process_group_id="ingest", expected_status="Enabled")
    )
    assert enabled.passed


@pytest.mark.parametrize(
    ("expected", "counts", "violations"),
    [
        ("Stopped", {"running": 0, "stopped": 3}, ()),
        ("Stopped", {"running": 1}, ("running_count",)),
        ("Disabled", {"running": 0, "disabled": 2}, ()),
        ("Disabled", {"running": 0, "stopped": 1, "disabled": 1}, ("stopped_count",)),
        ("Enabled", {"disabled": 1}, ("disabled_count",)),
    ],
)
async def test_expected_statuses_over_the_wire(
    lab: NifiLab,
    pool: NifiClientPool,
    unique: Callable[[str], str],
    expected: str,
    counts: dict[str, int],
    violations: tuple[str, ...],
) -> None:
    flow = pg_flow()
    flow.set_counts("export", **counts)  # type: ignore[arg-type]
    cluster, _ = single_node_cluster(lab, unique("pg"), flow)
    report = await check_process_group(
        pool, cluster, pg_config(process_group_id="export", expected_status=expected)
    )
    assert report.group.violations == violations
    assert report.outcome == ("ok" if not violations else "critical")


async def test_process_group_check_fails_over_and_reports_unknown_groups(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("pgc"), members=2, flow=pg_flow())
    nodes[0].fail(FailureMode.DOWN)
    cluster = cluster_of("pg", *(endpoint_for(n.name, n.url) for n in nodes))
    report = await check_process_group(pool, cluster, pg_config(process_group_id="root"))
    assert report.answered_by == nodes[1].name
    assert report.unavailable_members == (nodes[0].name,)
    with pytest.raises(NifiRequestError) as caught:
        await check_process_group(pool, cluster, pg_config(process_group_id="missing"))
    assert caught.value.status_code == 404
    nodes[1].fail(FailureMode.DOWN)
    with pytest.raises(NifiClusterUnavailable):
        await check_process_group(pool, cluster, pg_config(process_group_id="root"))

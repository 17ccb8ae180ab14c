"""Nodes that are not ready: 409/503 and disconnected nodes fail over at once, are
backed off, and the answer says who was skipped and why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab.nifi import FailureMode, LabInstance, NifiLab, NodeState
from service.nifi.client import NifiClient
from service.nifi.cluster import call_cluster
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import NifiClusterUnavailable
from service.nifi.health import read_connected
from service.nifi.pool import NifiClientPool
from service.nifi.readiness import NodeReadiness
from tests.nifi.conftest import FAST_RETRY, cluster_of, endpoint_for


def cluster_for(nodes: list[LabInstance]) -> NifiCluster:
    return cluster_of("c", *(endpoint_for(n.name, n.url) for n in nodes))


@pytest.mark.parametrize(
    ("refusals", "expected"),
    [(1, 15.0), (2, 30.0), (3, 60.0), (5, 240.0), (6, 300.0), (20, 300.0)],
)
def test_back_off_doubles_up_to_its_cap(refusals: int, expected: float) -> None:
    readiness = NodeReadiness(base=15, cap=300)
    for _ in range(refusals):
        backoff = readiness.not_ready("n1", "HTTP 409", now=1000.0)
    assert backoff.until - 1000.0 == expected
    assert readiness.backed_off("n1", 1000.0 + expected - 0.1) is not None
    assert readiness.backed_off("n1", 1000.0 + expected) is None
    readiness.ready("n1")
    assert readiness.not_ready("n1", "again", now=0.0).refusals == 1


def test_back_off_needs_a_sane_range() -> None:
    with pytest.raises(ValueError, match="base <= cap"):
        NodeReadiness(base=10, cap=5)


async def test_a_409_primary_fails_over_at_once_and_the_member_is_asked(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("init"), members=3)
    nodes[0].initializing = True
    answer = await call_cluster(pool, cluster_for(nodes), NifiClient.about)
    assert answer.answered_by == nodes[1].name
    # Asked once (no retry of a node that is not ready), then the member.
    assert [n.request_count for n in nodes] == [1, 1, 0]
    [failure] = answer.failures
    assert failure.member == nodes[0].name
    assert "HTTP 409: The Flow Controller is initializing the Data Flow." in failure.error


async def test_a_backed_off_node_is_skipped_and_the_answer_says_why(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    now = [5000.0]
    nodes = lab.add_cluster(unique("backoff"), members=2)
    cluster = cluster_for(nodes)
    async with NifiClientPool(retry=FAST_RETRY, clock=lambda: now[0]) as pool:
        nodes[0].fail(FailureMode.DOWN)
        first = await call_cluster(pool, cluster, NifiClient.about)
        assert first.answered_by == nodes[1].name
        assert "HTTP 503" in first.failures[0].error
        nodes[0].recover()
        # Within the back-off the primary is not asked, and the answer says so.
        now[0] += 10
        second = await call_cluster(pool, cluster, NifiClient.about)
        assert second.answered_by == nodes[1].name
        assert nodes[0].request_count == 1
        [skipped] = second.skipped
        assert (skipped.member, skipped.tried) == (nodes[0].name, False)
        assert skipped.to_dict()["reason"].startswith("backed off after: ")
        assert "HTTP 503" in skipped.error
        # After it the primary is asked first again and its refusals are forgotten.
        now[0] += 20
        third = await call_cluster(pool, cluster, NifiClient.about)
        assert third.answered_by == nodes[0].name
        assert third.passed_over == ()
        assert pool.readiness.backed_off(nodes[0].name, now[0]) is None


async def test_backed_off_nodes_are_still_asked_when_nobody_else_answers(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("last-resort"), members=2)
    cluster = cluster_for(nodes)
    async with NifiClientPool(retry=FAST_RETRY) as pool:
        nodes[0].initializing = True
        await call_cluster(pool, cluster, NifiClient.about)
        nodes[0].initializing = False
        nodes[1].fail(FailureMode.ERROR)
        answer = await call_cluster(pool, cluster, NifiClient.about)
    assert answer.answered_by == nodes[0].name
    assert [f.member for f in answer.failures] == [nodes[1].name]


async def test_a_disconnected_node_is_passed_over_for_a_connected_one(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("split"), members=2)
    nodes[0].state = NodeState.DISCONNECTED

    async def about_connected(client: NifiClient) -> str:
        return (await read_connected(client, NifiClient.about))[1].version

    answer = await call_cluster(pool, cluster_for(nodes), about_connected)
    assert answer.answered_by == nodes[1].name
    assert "not connected to its cluster" in answer.failures[0].error
    assert pool.readiness.backed_off(nodes[0].name, pool.now()) is not None


async def test_no_connected_member_is_a_cluster_unavailable(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("all-out"), members=2)
    for node in nodes:
        node.state = NodeState.OFFLOADED

    async def summary_only(client: NifiClient) -> None:
        await read_connected(client, NifiClient.about)

    with pytest.raises(NifiClusterUnavailable, match="not connected to its cluster"):
        await call_cluster(pool, cluster_for(nodes), summary_only)

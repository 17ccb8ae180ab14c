"""Cluster calls: the primary first, another member when it does not answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab.nifi import FailureMode, LabInstance, NifiLab
from service.db.nifi_models import AuthMode
from service.nifi.client import NifiClient
from service.nifi.cluster import call_cluster
from service.nifi.endpoints import NifiCluster
from service.nifi.errors import NifiAuthError, NifiClusterUnavailable
from service.nifi.pool import NifiClientPool
from tests.nifi.conftest import cluster_of, endpoint_for


def cluster_for(cluster_id: str, nodes: list[LabInstance], **options: object) -> NifiCluster:
    return cluster_of(cluster_id, *(endpoint_for(n.name, n.url, **options) for n in nodes))  # type: ignore[arg-type]


async def test_primary_answers_when_up(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("up"), members=3)
    answer = await call_cluster(pool, cluster_for("c", nodes), NifiClient.about)
    assert answer.answered_by == nodes[0].name
    assert answer.failures == ()
    assert [n.request_count for n in nodes] == [1, 0, 0]


async def test_refused_primary_fails_over_to_the_next_member(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("refused"), members=3)
    await lab.serve_dedicated(nodes[0].name)
    cluster = cluster_for("c", nodes)
    await lab.stop_dedicated(nodes[0].name)
    answer = await call_cluster(pool, cluster, NifiClient.about)
    assert answer.answered_by == nodes[1].name
    [failure] = answer.failures
    assert failure.member == nodes[0].name
    assert "Cannot connect" in failure.error
    # The node comes back on the same address and is the one asked again.
    await lab.restart_dedicated(nodes[0].name)
    again = await call_cluster(pool, cluster, NifiClient.about)
    assert again.answered_by == nodes[0].name


async def test_5xx_primary_fails_over(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("5xx"), members=2)
    nodes[0].fail(FailureMode.DOWN)
    answer = await call_cluster(pool, cluster_for("c", nodes), NifiClient.about)
    assert answer.answered_by == nodes[1].name
    assert "HTTP 503" in answer.failures[0].error


async def test_hanging_primary_fails_over_after_its_read_timeout(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("hang"), members=2)
    nodes[0].fail(FailureMode.HANG)
    cluster = cluster_for("c", nodes, read_timeout=0.2)
    answer = await call_cluster(pool, cluster, NifiClient.about)
    assert answer.answered_by == nodes[1].name


async def test_no_member_answering_lists_every_failure(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("dead"), members=2)
    for node in nodes:
        node.fail(FailureMode.ERROR)
    with pytest.raises(NifiClusterUnavailable) as caught:
        await call_cluster(pool, cluster_for("dead-cluster", nodes), NifiClient.about)
    assert [f.member for f in caught.value.failures] == [n.name for n in nodes]
    assert "dead-cluster" in caught.value.message
    assert caught.value.code == "nifi_cluster_unavailable"


async def test_auth_errors_do_not_fail_over(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    nodes = lab.add_cluster(unique("auth"), members=2, users={"admin": "right"})
    cluster = cluster_for(
        "c", nodes, auth=AuthMode.USERNAME_PASSWORD, username="admin", password="wrong"
    )
    with pytest.raises(NifiAuthError):
        await call_cluster(pool, cluster, NifiClient.about)
    assert nodes[1].request_count == 0

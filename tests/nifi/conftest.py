"""Fixtures for the NiFi client tests: one lab per module, a fresh pool per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from lab.nifi import NifiLab
from lab.nifi_tls import LabPki, generate_pki
from service.db.nifi_models import AuthMode
from service.nifi.endpoints import ClusterMember, NifiCluster, NifiEndpoint
from service.nifi.pool import NifiClientPool
from service.nifi.resources import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.02)
_counter = itertools.count(1)


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


@pytest.fixture
async def pool() -> AsyncIterator[NifiClientPool]:
    async with NifiClientPool(retry=FAST_RETRY) as created:
        yield created


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Instance names unique within the module's lab."""
    return lambda prefix: f"{prefix}-{next(_counter)}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return generate_pki(tmp_path_factory.mktemp("pki"), client_key_password="key-pass")


def endpoint_for(
    name: str, url: str, *, auth: AuthMode = AuthMode.NONE, **options: object
) -> NifiEndpoint:
    """A lab instance's endpoint with short timeouts."""
    values: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0}
    values.update(options)
    return NifiEndpoint(name=name, url=url, auth=auth, **values)  # type: ignore[arg-type]


def cluster_of(cluster_id: str, *endpoints: NifiEndpoint) -> NifiCluster:
    """A cluster whose first endpoint is the primary."""
    members = tuple(
        ClusterMember(endpoint, is_primary=index == 0) for index, endpoint in enumerate(endpoints)
    )
    return NifiCluster(id=cluster_id, name=f"Cluster {cluster_id}", members=members)

"""Endpoint and cluster values: URL normalisation, required fields, one primary."""

from __future__ import annotations

import pytest

from service.db.nifi_models import AuthMode
from service.nifi.endpoints import (
    ClusterMember,
    NifiCluster,
    NifiEndpoint,
    normalize_api_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://nifi:8443", "https://nifi:8443/nifi-api"),
        ("https://nifi:8443/", "https://nifi:8443/nifi-api"),
        ("https://nifi:8443/nifi", "https://nifi:8443/nifi-api"),
        ("https://nifi:8443/nifi/", "https://nifi:8443/nifi-api"),
        ("https://nifi:8443/nifi-api", "https://nifi:8443/nifi-api"),
        ("https://nifi:8443/nifi-api/", "https://nifi:8443/nifi-api"),
        ("http://127.0.0.1:9000/i/a", "http://127.0.0.1:9000/i/a/nifi-api"),
        ("  http://h/proxy/nifi  ", "http://h/proxy/nifi-api"),
    ],
)
def test_urls_are_normalised_to_the_api_root(url: str, expected: str) -> None:
    assert normalize_api_url(url) == expected
    assert NifiEndpoint(name="n", url=url).url == expected


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        normalize_api_url("nifi:8443")


@pytest.mark.parametrize(
    ("auth", "missing"),
    [
        (AuthMode.USERNAME_PASSWORD, "username, password"),
        (AuthMode.CLIENT_CERTIFICATE, "client_cert_path"),
        (AuthMode.OIDC_CLIENT_CREDENTIALS, "oidc_discovery_url, oidc_client_id"),
    ],
)
def test_each_auth_mode_needs_its_fields(auth: AuthMode, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        NifiEndpoint(name="n", url="https://h", auth=auth)


def test_secrets_stay_out_of_repr() -> None:
    endpoint = NifiEndpoint(
        name="n",
        url="https://h",
        auth=AuthMode.USERNAME_PASSWORD,
        username="admin",
        password="s3cret-value",
    )
    assert "s3cret-value" not in repr(endpoint)
    assert "admin" in repr(endpoint)


def test_auth_mode_is_accepted_as_its_string() -> None:
    endpoint = NifiEndpoint(name="n", url="https://h", auth="none")  # type: ignore[arg-type]
    assert endpoint.auth is AuthMode.NONE


def _member(name: str, primary: bool) -> ClusterMember:
    return ClusterMember(NifiEndpoint(name=name, url=f"https://{name}"), is_primary=primary)


def test_cluster_tries_the_primary_first_then_the_others_in_order() -> None:
    cluster = NifiCluster(
        id="c", name="C", members=(_member("a", False), _member("b", True), _member("c", False))
    )
    assert cluster.primary.name == "b"
    assert [e.name for e in cluster.in_failover_order()] == ["b", "a", "c"]


@pytest.mark.parametrize("primaries", [0, 2])
def test_cluster_needs_exactly_one_primary(primaries: int) -> None:
    members = tuple(_member(f"m{i}", i < primaries) for i in range(3))
    with pytest.raises(ValueError, match="exactly one primary"):
        NifiCluster(id="c", name="C", members=members)


def test_cluster_refuses_a_member_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        NifiCluster(id="c", name="C", members=(_member("a", True), _member("a", False)))

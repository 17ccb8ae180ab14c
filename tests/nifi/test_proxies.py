"""Requests through an instance's HTTP proxy, except where NO_PROXY says otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab.http_proxy import HttpProxy
from lab.nifi import NifiLab, ServerTls
from lab.nifi_tls import LabPki
from service.db.nifi_models import AuthMode
from service.nifi.pool import NifiClientPool
from service.nifi.proxies import bypasses_proxy, no_proxy_from, proxy_for
from tests.nifi.conftest import FAST_RETRY, endpoint_for


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("nifi.corp.example", 8443, "", False),
        ("nifi.corp.example", 8443, "*", True),
        ("nifi.corp.example", 8443, "corp.example", True),
        ("nifi.corp.example", 8443, ".corp.example", True),
        ("nifi.corp.example", 8443, "*.corp.example", True),
        ("corp.example", 8443, ".corp.example", True),
        ("notcorp.example", 8443, "corp.example", False),
        ("nifi.corp.example", 8443, "other.example, corp.example", True),
        ("nifi.corp.example", 8443, "corp.example:8443", True),
        ("nifi.corp.example", 8443, "corp.example:9443", False),
        ("NIFI.Corp.Example", 8443, "corp.example", True),
        ("10.1.2.3", 8443, "10.0.0.0/8", True),
        ("10.1.2.3", 8443, "10.1.2.3", True),
        ("11.1.2.3", 8443, "10.0.0.0/8", False),
        ("127.0.0.1", 80, "localhost,127.0.0.1", True),
        ("::1", 80, "::1", True),
        ("nifi.corp.example", 8443, "10.0.0.0/8", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypass


def test_proxy_choice_and_environment() -> None:
    assert proxy_for("https://nifi.corp.example/nifi-api", None, "") is None
    assert proxy_for("https://a.example/nifi-api", "http://p:3128", "") == "http://p:3128"
    assert proxy_for("https://a.example:443/x", "http://p:3128", "a.example:443") is None
    assert proxy_for("http://a.example/x", "http://p:3128", "a.example:80") is None
    assert no_proxy_from({"no_proxy": "a"}) == "a"
    assert no_proxy_from({"NO_PROXY": "b", "no_proxy": "a"}) == "b"


async def test_requests_and_logins_go_through_the_proxy(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("proxied"), users={"admin": "pw"})
    async with HttpProxy() as proxy, NifiClientPool(retry=FAST_RETRY, no_proxy="") as pool:
        endpoint = endpoint_for(
            node.name,
            node.url,
            auth=AuthMode.USERNAME_PASSWORD,
            username="admin",
            password="pw",
            proxy_url=proxy.url,
        )
        assert (await pool.get(endpoint).about()).title == "NiFi"
    assert proxy.requests == [
        f"POST {node.url}/access/token",
        f"GET {node.url}/flow/about",
    ]


async def test_https_is_tunnelled(lab: NifiLab, pki: LabPki, unique: Callable[[str], str]) -> None:
    name = unique("tunnelled")
    lab.add_instance(name)
    url = await lab.serve_dedicated(name, tls=ServerTls(pki.server_cert, pki.server_key))
    port = url.split(":")[2].split("/")[0]
    async with HttpProxy() as proxy, NifiClientPool(retry=FAST_RETRY, no_proxy="") as pool:
        endpoint = endpoint_for(name, url, ca_bundle=str(pki.ca_cert), proxy_url=proxy.url)
        assert (await pool.get(endpoint).about()).title == "NiFi"
    assert proxy.requests == [f"CONNECT 127.0.0.1:{port}"]


async def test_no_proxy_hosts_are_reached_directly(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("direct"))
    async with (
        HttpProxy() as proxy,
        NifiClientPool(retry=FAST_RETRY, no_proxy="localhost, 127.0.0.0/8") as pool,
    ):
        endpoint = endpoint_for(node.name, node.url, proxy_url=proxy.url)
        assert (await pool.get(endpoint).about()).title == "NiFi"
    assert proxy.requests == []
    assert node.request_count == 1

"""The NiFi client against the lab over loopback: auth modes, tokens, retries, errors."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from lab.nifi import FailureMode, NifiLab, ServerTls
from lab.nifi_tls import LabPki, generate_pki
from service.db.nifi_models import AuthMode
from service.nifi.errors import (
    NifiAuthError,
    NifiNodeNotReady,
    NifiRequestError,
    NifiTlsError,
    NifiUnavailable,
)
from service.nifi.pool import NifiClientPool
from tests.nifi.conftest import FAST_RETRY, endpoint_for

USERS = {"admin": "admin-password"}


def password_endpoint(name: str, url: str, password: str = "admin-password") -> object:
    return endpoint_for(
        name, url, auth=AuthMode.USERNAME_PASSWORD, username="admin", password=password
    )


async def test_anonymous_instance(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("anon"), version="2.0.0")
    about = await pool.get(endpoint_for(node.name, node.url)).about()
    assert (about.title, about.version) == ("NiFi", "2.0.0")


async def test_username_password_logs_in_once_and_reuses_the_token(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pw"), users=USERS)
    client = pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]
    for _ in range(3):
        await client.about()
    assert node.login_count == 1
    assert client.login_count == 1
    assert node.request_count == 4  # one login, three API calls


async def test_wrong_password_is_an_auth_error(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pw"), users=USERS)
    client = pool.get(password_endpoint(node.name, node.url, password="nope"))  # type: ignore[arg-type]
    with pytest.raises(NifiAuthError, match="login refused with HTTP 400"):
        await client.about()
    assert node.login_count == 0


async def test_without_credentials_a_protected_instance_refuses(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pw"), users=USERS)
    with pytest.raises(NifiAuthError, match="401"):
        await pool.get(endpoint_for(node.name, node.url)).about()


async def test_expired_token_triggers_one_relogin(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pw"), users=USERS)
    client = pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]
    await client.about()
    assert lab.expire_tokens(node.name) == 1
    await client.about()
    assert node.login_count == 2
    # login, about, refused about, login, about
    assert node.request_count == 5


async def test_token_is_renewed_shortly_before_it_expires(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    now = [1_000_000.0]
    node = lab.add_instance(unique("pw"), users=USERS)
    async with NifiClientPool(retry=FAST_RETRY, clock=lambda: now[0]) as pool:
        client = pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]
        await client.about()
        now[0] += 5.0
        await client.about()
        assert node.login_count == 1
        # The lab's tokens carry a real `exp`; jump the client's clock past it.
        now[0] = 10_000_000_000.0
        await client.about()
        assert node.login_count == 2
        assert node.request_count == 5  # no request was refused


async def test_persistent_401_fails_after_one_relogin(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pw"), users=USERS)
    client = pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]
    await client.about()
    node.fail(FailureMode.UNAUTHORIZED)
    with pytest.raises(NifiAuthError, match="401"):
        await client.about()
    assert client.login_count == 2


def oidc_endpoint(lab: NifiLab, name: str, url: str, secret: str) -> object:
    return endpoint_for(
        name,
        url,
        auth=AuthMode.OIDC_CLIENT_CREDENTIALS,
        oidc_discovery_url=lab.oidc_discovery_url,
        oidc_client_id="opsjobs",
        oidc_client_secret=secret,
    )


async def test_oidc_client_credentials(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    lab.add_oidc_client("opsjobs", "client-secret")
    node = lab.add_instance(unique("oidc"), oidc=True)
    before = lab.oidc_token_count
    client = pool.get(oidc_endpoint(lab, node.name, node.url, "client-secret"))  # type: ignore[arg-type]
    await client.about()
    await client.about()
    assert lab.oidc_token_count == before + 1
    lab.expire_tokens()
    await client.about()
    assert lab.oidc_token_count == before + 2
    assert node.login_count == 0  # NiFi's own login was never used


async def test_oidc_wrong_secret_is_an_auth_error(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    lab.add_oidc_client("opsjobs", "client-secret")
    node = lab.add_instance(unique("oidc"), oidc=True)
    client = pool.get(oidc_endpoint(lab, node.name, node.url, "wrong"))  # type: ignore[arg-type]
    with pytest.raises(NifiAuthError, match="OIDC token request refused with HTTP 401"):
        await client.about()


async def test_provider_tokens_are_refused_by_an_instance_without_oidc(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    lab.add_oidc_client("opsjobs", "client-secret")
    node = lab.add_instance(unique("pw-only"), users=USERS)
    client = pool.get(oidc_endpoint(lab, node.name, node.url, "client-secret"))  # type: ignore[arg-type]
    with pytest.raises(NifiAuthError):
        await client.about()


async def test_mutual_tls_with_a_client_certificate(
    lab: NifiLab, pool: NifiClientPool, pki: LabPki, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("mtls"), anonymous=False)
    tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    url = await lab.serve_dedicated(node.name, tls=tls)
    assert url.startswith("https://127.0.0.1:")
    endpoint = endpoint_for(
        node.name,
        url,
        auth=AuthMode.CLIENT_CERTIFICATE,
        client_cert_path=str(pki.client_cert),
        client_key_path=str(pki.client_key),
        client_key_password=pki.client_key_password,
        ca_bundle=str(pki.ca_cert),
    )
    about = await pool.get(endpoint).about()
    assert about.title == "NiFi"
    # The same instance over the shared plain-HTTP server has no certificate to trust.
    with pytest.raises(NifiAuthError):
        await pool.get(endpoint_for("via-shared", lab.base_url + f"/i/{node.name}")).about()


async def test_mutual_tls_refuses_a_client_without_certificate(
    lab: NifiLab, pool: NifiClientPool, pki: LabPki, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("mtls"), anonymous=False)
    tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    url = await lab.serve_dedicated(node.name, tls=tls)
    client = pool.get(endpoint_for(node.name, url, ca_bundle=str(pki.ca_cert)))
    with pytest.raises(NifiTlsError, match="refused the client certificate") as caught:
        await client.about()
    assert caught.value.kind == "client_certificate_refused"
    assert "no client certificate is configured" in caught.value.message
    assert node.request_count == 0


async def test_tls_server_is_verified_against_the_ca_bundle(
    lab: NifiLab,
    pool: NifiClientPool,
    pki: LabPki,
    unique: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    node = lab.add_instance(unique("tls"))
    url = await lab.serve_dedicated(node.name, tls=ServerTls(pki.server_cert, pki.server_key))
    trusted = pool.get(endpoint_for("trusted", url, ca_bundle=str(pki.ca_cert)))
    assert (await trusted.about()).title == "NiFi"
    other = generate_pki(tmp_path_factory.mktemp("other-ca"))
    strangers = pool.get(endpoint_for("strangers", url, ca_bundle=str(other.ca_cert)))
    with pytest.raises(NifiTlsError, match="not signed by a CA this instance trusts"):
        await strangers.about()
    unverified = pool.get(endpoint_for("unverified", url, verify_tls=False))
    assert (await unverified.about()).title == "NiFi"


async def test_5xx_is_retried_with_backoff(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("flaky"))
    node.fail(FailureMode.ERROR, times=2)
    assert (await pool.get(endpoint_for(node.name, node.url)).about()).title == "NiFi"
    assert node.request_count == 3


async def test_persistent_5xx_is_unavailable_after_bounded_retries(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("broken"))
    node.fail(FailureMode.ERROR)
    with pytest.raises(NifiUnavailable, match="HTTP 500"):
        await pool.get(endpoint_for(node.name, node.url)).about()
    assert node.request_count == FAST_RETRY.attempts


@pytest.mark.parametrize("mode", ["down", "initializing"])
async def test_503_and_409_are_node_not_ready_and_not_retried(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str], mode: str
) -> None:
    node = lab.add_instance(unique("not-ready"))
    if mode == "down":
        node.fail(FailureMode.DOWN)
    else:
        node.initializing = True
    expected = "HTTP 503: Service Unavailable" if mode == "down" else "HTTP 409: The Flow"
    with pytest.raises(NifiNodeNotReady, match=expected):
        await pool.get(endpoint_for(node.name, node.url)).about()
    assert node.request_count == 1


async def test_a_hanging_instance_is_not_retried(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("hang"))
    node.fail(FailureMode.HANG)
    client = pool.get(endpoint_for(node.name, node.url, read_timeout=0.2))
    with pytest.raises(NifiUnavailable, match="Timeout on reading"):
        await client.about()
    assert node.request_count == 1


async def test_connection_refused_is_unavailable(pool: NifiClientPool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = pool.get(endpoint_for("nobody", f"http://127.0.0.1:{port}"))
    with pytest.raises(NifiUnavailable, match="Cannot connect"):
        await client.about()


async def test_unknown_process_group_is_a_request_error(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pg"))
    client = pool.get(endpoint_for(node.name, node.url))
    with pytest.raises(NifiRequestError, match="Unable to locate group") as caught:
        await client.process_group("no-such-group")
    assert caught.value.status_code == 404


async def test_pool_reuses_clients_and_replaces_changed_endpoints(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    node = lab.add_instance(unique("pool"), users=USERS)
    pool = NifiClientPool(retry=FAST_RETRY)
    first = pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]
    assert pool.get(password_endpoint(node.name, node.url)) is first  # type: ignore[arg-type]
    rotated = pool.get(password_endpoint(node.name, node.url, password="rotated"))  # type: ignore[arg-type]
    assert rotated is not first
    await first.about()
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        pool.get(password_endpoint(node.name, node.url))  # type: ignore[arg-type]

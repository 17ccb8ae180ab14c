"""OIDC client credentials against the lab's provider: scope and audience, and a
discovery document read again after an hour or when the token endpoint moved."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from lab.nifi import NifiLab
from service.db.nifi_models import AuthMode
from service.nifi.endpoints import NifiEndpoint
from service.nifi.errors import NifiAuthError
from service.nifi.pool import NifiClientPool
from service.nifi.resources import DISCOVERY_MAX_AGE, DISCOVERY_MIN_REFRESH
from tests.nifi.conftest import FAST_RETRY, endpoint_for

SCOPE = "api://nifi-prod/.default"
AUDIENCE = "https://nifi.example/api"


def oidc_endpoint(
    lab: NifiLab, name: str, url: str, client_id: str, **options: object
) -> NifiEndpoint:
    return endpoint_for(
        name,
        url,
        auth=AuthMode.OIDC_CLIENT_CREDENTIALS,
        oidc_discovery_url=lab.oidc_discovery_url,
        oidc_client_id=client_id,
        oidc_client_secret="secret",
        **options,
    )


async def test_scope_and_audience_are_sent(
    lab: NifiLab, pool: NifiClientPool, unique: Callable[[str], str]
) -> None:
    client_id = unique("entra-like")
    lab.add_oidc_client(client_id, "secret", scope=SCOPE, audience=AUDIENCE)
    node = lab.add_instance(unique("oidc"), oidc=True)
    bare = oidc_endpoint(lab, node.name, node.url, client_id)
    with pytest.raises(NifiAuthError, match="refused with HTTP 400: invalid_scope"):
        await pool.get(bare).about()
    scoped = oidc_endpoint(lab, node.name, node.url, client_id, oidc_scope=SCOPE)
    with pytest.raises(NifiAuthError, match="invalid_request"):
        await pool.get(scoped).about()
    complete = oidc_endpoint(
        lab, node.name, node.url, client_id, oidc_scope=SCOPE, oidc_audience=AUDIENCE
    )
    assert (await pool.get(complete).about()).title == "NiFi"


@contextlib.asynccontextmanager
async def clocked_pool(
    lab: NifiLab, unique: Callable[[str], str], *, provider_secret: str = "secret"
) -> AsyncIterator[tuple[NifiClientPool, NifiEndpoint, list[float]]]:
    """A pool on a clock the test moves (``now[0]``), an OIDC instance and its endpoint."""
    now = [1_000.0]
    client_id = unique("client")
    lab.add_oidc_client(client_id, provider_secret)
    node = lab.add_instance(unique("oidc"), oidc=True)
    async with NifiClientPool(retry=FAST_RETRY, clock=lambda: now[0]) as pool:
        yield pool, oidc_endpoint(lab, node.name, node.url, client_id), now


async def test_discovery_is_read_again_after_an_hour(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    async with clocked_pool(lab, unique) as (pool, endpoint, now):
        client = pool.get(endpoint)
        before = lab.oidc_discovery_count
        await client.about()
        lab.expire_tokens()
        now[0] += DISCOVERY_MAX_AGE - 1
        await client.about()
        assert lab.oidc_discovery_count == before + 1
        lab.expire_tokens()
        now[0] += 2
        await client.about()
        assert lab.oidc_discovery_count == before + 2


async def test_a_moved_token_endpoint_is_found_again(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    async with clocked_pool(lab, unique) as (pool, endpoint, now):
        client = pool.get(endpoint)
        await client.about()
        lab.move_oidc_token_endpoint()
        lab.expire_tokens()
        now[0] += DISCOVERY_MIN_REFRESH + 1
        before = lab.oidc_discovery_count
        # The old token endpoint answers 404; the new discovery names the new one.
        assert (await client.about()).title == "NiFi"
        assert lab.oidc_discovery_count == before + 1


async def test_a_wrong_secret_does_not_rediscover_on_every_login(
    lab: NifiLab, unique: Callable[[str], str]
) -> None:
    async with clocked_pool(lab, unique, provider_secret="other-secret") as (pool, endpoint, _):
        before = lab.oidc_discovery_count
        for _ in range(3):
            with pytest.raises(NifiAuthError, match="invalid_client"):
                await pool.get(endpoint).about()
    assert lab.oidc_discovery_count == before + 1

"""What the NiFi clients of one pool share: TLS contexts, retry policy, clock, node
readiness, ``NO_PROXY``, and the HTTP clients and discovery documents of identity
providers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from service.nifi.endpoints import NifiEndpoint
from service.nifi.proxies import no_proxy_from, proxy_for
from service.nifi.readiness import NodeReadiness
from service.nifi.tls import TlsContextCache, TlsSettings
from service.nifi.tokens import OidcProvider, discover_provider

IDP_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=30.0)
# A discovery document is read again after an hour (providers rotate endpoints and
# methods), and after a failed token request — but not more than once a minute, so
# a wrong secret does not turn every login into two requests to the provider.
DISCOVERY_MAX_AGE = 3600.0
DISCOVERY_MIN_REFRESH = 60.0


@dataclass(frozen=True, slots=True)
class _Discovered:
    provider: OidcProvider
    fetched_at: float


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of one request against one instance.

    Connection errors and 5xx answers are retried ``attempts - 1`` times, waiting
    ``backoff`` × 2^(n-1) (at most ``backoff_max``, jittered down by up to half)
    between tries; a read timeout is not retried on the same instance.
    """

    attempts: int = 3
    backoff: float = 0.1
    backoff_max: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.backoff_max < 0:
            raise ValueError("backoff must not be negative")

    def delay(self, attempt: int, jitter: float) -> float:
        """Wait after failed ``attempt`` (1-based); ``jitter`` in [0, 1)."""
        base = min(self.backoff_max, self.backoff * 2.0 ** (attempt - 1))
        return base * (1 - jitter / 2)


class SharedResources:
    """Created by :class:`~service.nifi.pool.NifiClientPool`, shared by its clients."""

    def __init__(
        self,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
        *,
        readiness: NodeReadiness | None = None,
        no_proxy: str | None = None,
    ) -> None:
        self.retry = retry
        self.clock = clock
        self.readiness = readiness or NodeReadiness()
        self.no_proxy = no_proxy_from() if no_proxy is None else no_proxy
        self.tls = TlsContextCache()
        self._idp_clients: dict[TlsSettings, aiohttp.ClientSession] = {}
        self._providers: dict[str, _Discovered] = {}
        self._lock = asyncio.Lock()

    def proxy_for(self, endpoint: NifiEndpoint, url: str) -> str | None:
        """The proxy a request of ``endpoint`` to ``url`` goes through, if any."""
        return proxy_for(url, endpoint.proxy_url, self.no_proxy)

    async def idp_http(self, endpoint: NifiEndpoint) -> aiohttp.ClientSession:
        """The HTTP client for ``endpoint``'s identity provider (one per TLS setting)."""
        settings = TlsSettings.for_identity_provider(endpoint)
        client = self._idp_clients.get(settings)
        if client is not None:
            return client
        context = await self.tls.get(settings)
        async with self._lock:
            client = self._idp_clients.get(settings)
            if client is None:
                client = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=context),
                    timeout=IDP_TIMEOUT,
                    trust_env=False,
                )
                self._idp_clients[settings] = client
            return client

    async def oidc_provider(self, endpoint: NifiEndpoint, *, refresh: bool = False) -> OidcProvider:
        """The provider's token endpoint from its discovery document, read again when
        older than an hour, or on ``refresh`` (after a failed token request) when older
        than a minute."""
        url = endpoint.oidc_discovery_url or ""
        cached = self._providers.get(url)
        now = self.clock()
        if cached is not None:
            age = now - cached.fetched_at
            if age < (DISCOVERY_MIN_REFRESH if refresh else DISCOVERY_MAX_AGE):
                return cached.provider
        provider = await discover_provider(
            await self.idp_http(endpoint), url, proxy=self.proxy_for(endpoint, url)
        )
        self._providers[url] = _Discovered(provider, now)
        return provider

    async def aclose(self) -> None:
        """Close the identity-provider clients."""
        clients = list(self._idp_clients.values())
        self._idp_clients.clear()
        for client in clients:
            await client.close()

"""What the NiFi clients of one pool share: TLS contexts, retry policy, clock, and the
HTTP clients and discovery documents of identity providers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from service.nifi.endpoints import NifiEndpoint
from service.nifi.tls import TlsContextCache, TlsSettings
from service.nifi.tokens import OidcProvider, discover_provider

IDP_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=30.0)


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

    def __init__(self, retry: RetryPolicy, clock: Callable[[], float] = time.time) -> None:
        self.retry = retry
        self.clock = clock
        self.tls = TlsContextCache()
        self._idp_clients: dict[TlsSettings, aiohttp.ClientSession] = {}
        self._providers: dict[str, OidcProvider] = {}
        self._lock = asyncio.Lock()

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

    async def oidc_provider(self, endpoint: NifiEndpoint) -> OidcProvider:
        """The provider's token endpoint, read once from its discovery document."""
        url = endpoint.oidc_discovery_url or ""
        provider = self._providers.get(url)
        if provider is None:
            provider = await discover_provider(await self.idp_http(endpoint), url)
            self._providers[url] = provider
        return provider

    async def aclose(self) -> None:
        """Close the identity-provider clients."""
        clients = list(self._idp_clients.values())
        self._idp_clients.clear()
        for client in clients:
            await client.close()

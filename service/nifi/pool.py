"""The NiFi clients of one worker process, one per instance, made once and reused."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from service.nifi.client import NifiClient
from service.nifi.endpoints import NifiEndpoint
from service.nifi.resources import RetryPolicy, SharedResources

logger = logging.getLogger(__name__)


class NifiClientPool:
    """Created once per worker (``on_startup``) and closed on shutdown.

    ``get`` returns the same :class:`NifiClient` for an instance name as long as its
    endpoint is unchanged; a changed endpoint (new URL, rotated secret) gets a new
    client and the old one is closed with the pool, since calls may still be using it.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resources = SharedResources(retry or RetryPolicy(), clock)
        self._clients: dict[str, NifiClient] = {}
        self._retired: list[NifiClient] = []
        self._closed = False

    def get(self, endpoint: NifiEndpoint) -> NifiClient:
        """The client for ``endpoint`` (created on first use, no I/O here)."""
        if self._closed:
            raise RuntimeError("the NiFi client pool is closed")
        client = self._clients.get(endpoint.name)
        if client is not None and client.endpoint == endpoint:
            return client
        if client is not None:
            logger.info("NiFi endpoint changed, new client", extra={"nifi_instance": endpoint.name})
            self._retired.append(client)
        client = NifiClient(endpoint, self._resources)
        self._clients[endpoint.name] = client
        return client

    async def aclose(self) -> None:
        """Close every client and identity-provider connection."""
        self._closed = True
        clients = [*self._clients.values(), *self._retired]
        self._clients.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()
        await self._resources.aclose()

    async def __aenter__(self) -> NifiClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""The NiFi clients of one worker process, one per instance, made once and reused."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from service.nifi.client import NifiClient
from service.nifi.endpoints import NifiEndpoint
from service.nifi.readiness import NodeReadiness
from service.nifi.resources import RetryPolicy, SharedResources

logger = logging.getLogger(__name__)


class NifiClientPool:
    """Created once per worker (``on_startup``) and closed on shutdown.

    ``get`` returns the same :class:`NifiClient` for an instance name as long as its
    endpoint is unchanged; a changed endpoint (new URL, rotated secret) gets a new
    client, and the old one is closed as soon as no request uses it — a worker whose
    instances change keeps no connections of the old settings open.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        readiness: NodeReadiness | None = None,
        no_proxy: str | None = None,
    ) -> None:
        self._resources = SharedResources(
            retry or RetryPolicy(), clock, readiness=readiness, no_proxy=no_proxy
        )
        self._clients: dict[str, NifiClient] = {}
        self._retired: list[NifiClient] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def readiness(self) -> NodeReadiness:
        """Which members recently said they were not ready (shared by every run)."""
        return self._resources.readiness

    def now(self) -> float:
        return self._resources.clock()

    def get(self, endpoint: NifiEndpoint) -> NifiClient:
        """The client for ``endpoint`` (created on first use, no I/O here)."""
        if self._closed:
            raise RuntimeError("the NiFi client pool is closed")
        client = self._clients.get(endpoint.name)
        if client is not None and client.endpoint == endpoint:
            return client
        if client is not None:
            logger.info("NiFi endpoint changed, new client", extra={"nifi_instance": endpoint.name})
            self._retire(client)
        client = NifiClient(endpoint, self._resources)
        self._clients[endpoint.name] = client
        return client

    def _retire(self, client: NifiClient) -> None:
        if client.retire():
            task = asyncio.get_running_loop().create_task(client.close_if_idle())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        else:
            # Busy: its last request closes it; the pool closes it if it shuts down first.
            self._retired.append(client)
        self._retired = [c for c in self._retired if not c.closed]

    async def aclose(self) -> None:
        """Close every client and identity-provider connection."""
        self._closed = True
        clients = [*self._clients.values(), *self._retired]
        self._clients.clear()
        self._retired.clear()
        await asyncio.gather(*self._closing)
        for client in clients:
            await client.aclose()
        await self._resources.aclose()

    async def __aenter__(self) -> NifiClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

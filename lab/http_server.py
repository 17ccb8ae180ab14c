"""An ASGI app served by uvicorn inside the running event loop, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

# uvicorn checks for shutdown every 0.1 s; in-flight requests get this long to finish.
GRACEFUL_SHUTDOWN_SECONDS = 1
# uvicorn's default: an idle keep-alive connection is closed after this long.
DEFAULT_KEEP_ALIVE_SECONDS = 5
STARTUP_POLL_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class ServerTls:
    """Serve HTTPS with ``cert``/``key``; with ``client_ca`` and
    ``require_client_cert`` the handshake demands a certificate signed by that CA."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    require_client_cert: bool = False


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The embedding process (tests, `opsjobs up`) owns the signal handlers.
        yield


class LoopbackServer:
    """One listening socket serving ``app``; ``start`` returns the bound port.

    The socket is bound here (``SO_REUSEADDR``) so a stopped server can start again on
    the same port, and a bind failure is an ``OSError`` rather than uvicorn's exit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ServerTls | None = None,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
    ) -> None:
        self._app = app
        self.host = host
        self.port = port
        self.tls = tls
        self.keep_alive = keep_alive
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def _config(self) -> uvicorn.Config:
        tls = self.tls
        return uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=int(self.keep_alive),
            ssl_certfile=str(tls.cert) if tls else None,
            ssl_keyfile=str(tls.key) if tls else None,
            ssl_ca_certs=str(tls.client_ca) if tls and tls.client_ca else None,
            ssl_cert_reqs=(ssl.CERT_REQUIRED if tls and tls.require_client_cert else ssl.CERT_NONE),
        )

    def _bind(self) -> socket.socket:
        # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto is IPPROTO_TCP, and without it every response waits ~40 ms (Nagle
        # against delayed ACKs) because uvicorn writes headers and body separately.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def start(self) -> int:
        """Start serving; returns the port (a free one when constructed with 0)."""
        if self.running:
            return self.port
        config = self._config()
        # Loading reads certificate files.
        await asyncio.to_thread(config.load)
        sock = self._bind()
        self.port = sock.getsockname()[1]
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("lab server stopped during startup")
            await asyncio.sleep(STARTUP_POLL_SECONDS)
        return self.port

    async def stop(self, *, abrupt: bool = False) -> None:
        """Stop listening; ``abrupt`` does not wait for in-flight requests."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        server.force_exit = abrupt
        await task
        self._server = None
        self._task = None

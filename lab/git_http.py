"""A git smart-HTTP server requiring Basic authentication, for backups to a remote.

Every request under ``/<name>.git/`` is checked against one username and token (or
password) and then answered by ``git http-backend`` (git's own CGI program) over the
bare repositories in ``root`` — the protocol real git hosts speak, on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lab.http_server import LoopbackServer

_UNAUTHORIZED = Response(
    "authentication required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="lab"'}
)


class GitHttpLab:
    """Serves the bare repositories under ``root`` at ``http://127.0.0.1:<port>/<name>.git``."""

    def __init__(self, root: Path, *, username: str, secret: str, host: str = "127.0.0.1") -> None:
        self.root = root
        self._expected = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
        self._host = host
        self.refused = 0
        #: Every request that reached the server, answered or refused.
        self.requests = 0
        self._server = LoopbackServer(
            Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET", "POST"])]),
            host=host,
        )

    def url(self, name: str) -> str:
        """The remote URL of the bare repository ``<root>/<name>.git``."""
        if not self._server.running:
            raise RuntimeError("the git lab is not started")
        return f"http://{self._server.host}:{self._server.port}/{name}.git"

    async def _serve(self, request: Request) -> Response:
        self.requests += 1
        if request.headers.get("authorization") != self._expected:
            self.refused += 1
            return _UNAUTHORIZED
        body = await request.body()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "PATH_INFO": request.url.path,
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
            "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
            # http-backend accepts pushes only from an authenticated user.
            "REMOTE_USER": "lab",
            "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        }
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=environment,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        output, _ = await process.communicate(body)
        head, _, content = output.partition(b"\r\n\r\n")
        status = 200
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name] = value.strip()
        return Response(content, status_code=status, headers=headers)

    async def start(self) -> None:
        """Bind a free loopback port and start serving."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop serving and release the port."""
        await self._server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

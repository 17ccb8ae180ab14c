"""What a NiFi request gives back, and the one place a request is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from service.nifi.tokens import AccessToken

_ERROR_TEXT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class NifiResponse:
    """A whole answer: status and body (read before the connection is released)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        # orjson: a status document of a large canvas is megabytes, decoded on the loop.
        return orjson.loads(self.content)


@dataclass(frozen=True, slots=True)
class NifiAbout:
    """``GET /flow/about``: which NiFi answered."""

    title: str
    version: str


def describe(exc: BaseException) -> str:
    """An exception as ``Type: message`` (aiohttp's messages alone can be empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def detail(response: NifiResponse) -> str:
    """``": <NiFi's message>"`` (its answers to errors are short plain text)."""
    text = response.text.strip()[:_ERROR_TEXT_LIMIT]
    return f": {text}" if text else ""


async def fetch(
    http: aiohttp.ClientSession,
    method: str,
    url: URL,
    token: AccessToken | None,
    proxy: str | None,
) -> NifiResponse:
    """Send one request and read the whole answer."""
    headers = None if token is None else {"Authorization": f"Bearer {token.value}"}
    async with http.request(method, url, headers=headers, proxy=proxy) as response:
        return NifiResponse(response.status, await response.read())

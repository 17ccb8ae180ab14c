"""A reverse proxy in front of the API that loses answers and cuts event streams on cue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import httpx
from aiohttp import web

from tests.conftest import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Faults:
    #: Run-creating POSTs to forward whose answer is then replaced by a 503.
    lose_post_answers: int = 0
    #: Event streams to cut after their first event.
    cut_streams: int = 0
    idempotency_keys: list[str | None] = field(default_factory=list)
    last_event_ids: list[str | None] = field(default_factory=list)


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}


@contextlib.asynccontextmanager
async def faulty_proxy(upstream: str, faults: Faults) -> AsyncIterator[str]:
    http = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(60, connect=5))

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST":
            faults.idempotency_keys.append(request.headers.get("Idempotency-Key"))
        if request.path.endswith("/events"):
            faults.last_event_ids.append(request.headers.get("Last-Event-ID"))
        upstream_request = http.build_request(
            request.method,
            request.path_qs,
            headers=_headers(request.headers),
            content=body,
        )
        answer = await http.send(upstream_request, stream=True)
        try:
            if request.method == "POST" and faults.lose_post_answers > 0:
                faults.lose_post_answers -= 1
                await answer.aread()
                return web.json_response(
                    {"error": {"code": "bad_gateway", "message": "lost", "details": None}},
                    status=503,
                )
            response = web.StreamResponse(
                status=answer.status_code, headers=_headers(answer.headers)
            )
            await response.prepare(request)
            cut = request.path.endswith("/events") and faults.cut_streams > 0
            sent = b""
            async for chunk in answer.aiter_raw():
                await response.write(chunk)
                sent += chunk
                if cut and b"\n\n" in sent and b"id: " in sent:
                    faults.cut_streams -= 1
                    assert request.transport is not None
                    request.transport.close()
                    return response
            await response.write_eof()
            return response
        finally:
            await answer.aclose()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await http.aclose()

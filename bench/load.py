"""A lean HTTP/1.1 load generator for the benchmarks that share the cores with the server."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

WARMUP = 200


@dataclass(frozen=True)
class Measured:
    p50_ms: float
    p99_ms: float
    per_second: float


class LoadClient:
    """One keep-alive HTTP/1.1 connection sending the same request again and again.

    The load generator shares the machine's cores with the server and PostgreSQL, so it
    is kept lean: the request is encoded once and a response is read by its
    Content-Length (the API answers every route here that way).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, url: str) -> LoadClient:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self._writer.write(request)
        status_line = await self._reader.readline()
        if not status_line:
            raise RuntimeError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


def encode_request(url: str, token: str, method: str, path: str) -> bytes:
    parts = urlsplit(url)
    body = b""
    if method == "POST":
        body = json.dumps({"job_type": "diag.echo", "parameters": {"message": "bench"}}).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def measure(
    url: str, token: str, method: str, path: str, *, requests: int, concurrency: int
) -> Measured:
    """Latencies and rate of ``requests`` calls spread over ``concurrency`` connections."""
    request = encode_request(url, token, method, path)
    latencies: list[float] = []
    expected = 202 if method == "POST" else 200
    per_client = requests // concurrency

    async def client_loop(client: LoadClient, count: int, record: bool) -> None:
        for _ in range(count):
            started = time.perf_counter()
            status, body = await client.send(request)
            elapsed = time.perf_counter() - started
            if status != expected:
                raise RuntimeError(f"{method} {path}: {status} {body[:500]!r}")
            if record:
                latencies.append(elapsed)

    clients = [await LoadClient.connect(url) for _ in range(concurrency)]
    try:
        await asyncio.gather(
            *(client_loop(client, max(1, WARMUP // concurrency), False) for client in clients)
        )
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, per_client, True) for client in clients))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Measured(
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=cuts[98] * 1000,
        per_second=len(latencies) / elapsed,
    )

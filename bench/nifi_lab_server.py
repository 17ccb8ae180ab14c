"""The NiFi lab for ``bench.nifi``, in a process of its own so that its CPU does not count
against the client being measured.

``python -m bench.nifi_lab_server CLUSTERS LATENCY BIG_CONNECTIONS RED_FRACTION`` builds
CLUSTERS single-node lab instances ``c1`` … plus one instance ``big`` whose canvas has
BIG_CONNECTIONS connections, RED_FRACTION of them red under the default thresholds.

The NiFi lab renders every status answer afresh (about 0.8 ms of CPU for a small
canvas); at 50 requests in flight and 50 ms latency the budget is 1 ms per request
for the client and the server together, so a rendering server would measure itself.
This process therefore asks the lab once for each instance's status answer and replays
those exact bytes from a minimal HTTP/1.1 server, after LATENCY seconds (``big``
answers at once). It prints one JSON line ``{"instances": {name: api_url}}`` and serves
until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import httpx

from lab.nifi import LabFlow, NifiLab

SMALL_CANVAS_CONNECTIONS = 20
BIG_CANVAS_GROUPS = 50
RED_QUEUE = 20_000  # flow files, above the default red threshold of 10,000
STATUS_PATH = "flow/process-groups/root/status"
SUMMARY_PATH = "flow/cluster/summary"
RECORDED_PATHS = (STATUS_PATH, SUMMARY_PATH)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def big_canvas(connections: int, red_fraction: float) -> LabFlow:
    """A canvas of ``connections`` green queues, every (1/red_fraction)-th one red."""
    flow = LabFlow.generate(
        seed=5000, groups=BIG_CANVAS_GROUPS, connections=connections, max_depth=4
    )
    step = round(1 / red_fraction) if red_fraction > 0 else 0
    for index, connection_id in enumerate(sorted(flow.connections)):
        if step and index % step == 0:
            flow.set_queue(connection_id, flow_files=RED_QUEUE)
    return flow


def http_response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class Replay(asyncio.Protocol):
    """Answers ``GET <path>`` with the recorded response for the path, after its delay."""

    def __init__(self, answers: dict[bytes, tuple[bytes, float]]) -> None:
        self._answers = answers
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" in self._buffer:
            head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].split(b"?", 1)[0]
            response, delay = self._answers.get(target, (NOT_FOUND, 0.0))
            loop.call_later(delay, self._write, response)

    def _write(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)


async def record(lab: NifiLab, names: list[str]) -> dict[tuple[str, str], bytes]:
    """Each instance's answers (status, cluster summary) as the lab renders them."""
    async with httpx.AsyncClient(trust_env=False, timeout=60) as http:
        bodies = {}
        for name in names:
            for path in RECORDED_PATHS:
                url = f"{lab.instances[name].url}/{path}"
                response = await http.get(url, params={"recursive": "true"})
                response.raise_for_status()
                bodies[name, path] = response.content
        return bodies


async def serve(clusters: int, latency: float, big_connections: int, red_fraction: float) -> None:
    small = LabFlow.generate(seed=1, groups=5, connections=SMALL_CANVAS_CONNECTIONS)
    names = [f"c{index}" for index in range(1, clusters + 1)]
    async with NifiLab() as lab:
        for name in names:
            lab.add_instance(name, flow=small)
        lab.add_instance("big", flow=big_canvas(big_connections, red_fraction))
        bodies = await record(lab, [*names, "big"])
    answers = {
        f"/i/{name}/nifi-api/{path}".encode(): (
            http_response(body),
            0.0 if name == "big" else latency,
        )
        for (name, path), body in bodies.items()
    }
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Replay(answers), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    urls = {name: f"http://127.0.0.1:{port}/i/{name}/nifi-api" for name, _ in bodies}
    print(json.dumps({"instances": urls}), flush=True)
    async with server:
        # The parent closes our stdin when it is done with us.
        await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    count, delay, big, fraction = sys.argv[1:5]
    asyncio.run(serve(int(count), float(delay), int(big), float(fraction)))

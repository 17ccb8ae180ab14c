"""A busy port is one line naming the port and its setting, and nothing keeps restarting:
``opsjobs up``, ``opsjobs api`` and ``python -m lab`` as child processes, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from service.supervisor import ChildRefused, ChildSpec, ListenPort, bind, supervise
from tests.conftest import TEST_DATABASE_URL, TEST_KEY_FILE, TEST_REDIS_URL, free_port

# Far below the 1 s first restart delay times the restarts a looping supervisor would do.
PROMPT_EXIT_S = 20


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A loopback port another process is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def stack_env(**ports: int) -> dict[str, str]:
    """Free ports for the API and every lab simulator; ``ports`` overrides some."""
    chosen = {
        "API__PORT": free_port(),
        "LAB__NIFI_PORT": free_port(),
        "LAB__NAUTOBOT_PORT": free_port(),
        "LAB__ALERTS_PORT": free_port(),
        "LAB__SMTP_PORT": free_port(),
        **{name.upper(): port for name, port in ports.items()},
    }
    return {
        **os.environ,
        "OPSJOBS_DATABASE__URL": TEST_DATABASE_URL,
        "OPSJOBS_REDIS__URL": TEST_REDIS_URL,
        "OPSJOBS_SECRETS__KEY_FILE": str(TEST_KEY_FILE),
        "OPSJOBS_LAB__ENABLED": "true",
        **{f"OPSJOBS_{name}": str(port) for name, port in chosen.items()},
    }


async def run(module: str, *args: str, env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=PROMPT_EXIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode(), time.monotonic() - started


@pytest.mark.parametrize(
    ("setting", "variable"),
    [
        ("lab.nifi_port", "LAB__NIFI_PORT"),
        ("lab.nautobot_port", "LAB__NAUTOBOT_PORT"),
        ("lab.alerts_port", "LAB__ALERTS_PORT"),
        ("lab.smtp_port", "LAB__SMTP_PORT"),
        ("api.port", "API__PORT"),
    ],
)
async def test_up_with_a_busy_port_says_which_and_stops(setting: str, variable: str) -> None:
    with held_port() as port:
        code, err, _ = await run("service.cli", "up", env=stack_env(**{variable: port}))
    assert code == 2
    assert err.strip().splitlines() == [
        f"opsjobs: port {port} ({setting}) is in use; free it or set OPSJOBS_{variable}"
    ]


async def test_the_lab_with_a_busy_port_says_which_and_exits() -> None:
    with held_port() as port:
        code, err, _ = await run("lab", env=stack_env(lab__nautobot_port=port))
    assert code == 2
    assert err.strip().splitlines() == [
        f"lab: port {port} (lab.nautobot_port) is in use; free it or set OPSJOBS_LAB__NAUTOBOT_PORT"
    ]


async def test_the_api_with_a_busy_port_says_which_and_exits() -> None:
    with held_port() as port:
        code, err, _ = await run("service.cli", "api", env=stack_env(api__port=port))
    assert code == 2
    assert err.strip().splitlines() == [
        f"opsjobs: port {port} (api.port) is in use; free it or set OPSJOBS_API__PORT"
    ]


async def test_two_settings_on_one_port_are_refused_before_anything_starts() -> None:
    port = free_port()
    env = stack_env(lab__nifi_port=port, lab__alerts_port=port)
    code, err, _ = await run("service.cli", "up", env=env)
    assert code == 2
    assert err.strip().splitlines() == [
        f"opsjobs: port {port} is both lab.nifi_port and lab.alerts_port; "
        "set OPSJOBS_LAB__ALERTS_PORT to another port"
    ]


async def test_a_child_refusing_its_settings_stops_the_others_instead_of_restarting() -> None:
    """A child that exits with the settings code (as the API does when its port was taken
    after ``up`` checked it) is not restarted: every child is stopped."""
    port = free_port()
    server = ChildSpec("http", ("--bind", "127.0.0.1", str(port)), module="http.server")
    refuser = ChildSpec("refuser", (str(port),), module="tests.refusing_child")
    started = time.monotonic()
    with pytest.raises(ChildRefused) as refused:
        await asyncio.wait_for(supervise([server, refuser], grace=5), timeout=PROMPT_EXIT_S)
    assert refused.value.name == "refuser"
    # No restart delay was waited, and the long-running child is gone.
    assert time.monotonic() - started < PROMPT_EXIT_S
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_the_api_socket_answers_without_waiting_for_delayed_acks() -> None:
    """Connections accepted on the API's own socket have TCP_NODELAY (asyncio sets it only
    for sockets that say they are TCP); without it every small answer waited ~40 ms."""
    sock = bind(ListenPort("api.port", "127.0.0.1", 0))
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        nodelay = await asyncio.wait_for(accepted, 10)
        writer.close()
        assert nodelay != 0, "TCP_NODELAY is off on an accepted API connection"
    finally:
        server.close()
        await server.wait_closed()

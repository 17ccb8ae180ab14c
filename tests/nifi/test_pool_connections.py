"""A worker whose instances change keeps no connections of old settings open: counted
as ESTABLISHED TCP connections to the lab's port (/proc/net/tcp), after 100 changes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lab.nifi import NifiLab
from service.db.nifi_models import AuthMode
from service.nifi.endpoints import NifiEndpoint
from service.nifi.pool import NifiClientPool
from tests.nifi.conftest import FAST_RETRY, endpoint_for

CHANGES = 100
ESTABLISHED = "01"
SETTLE_SECONDS = 10.0
# The lab keeps idle connections open far longer than the test waits, so a leaked
# connection is still there to count.
KEEP_ALIVE_SECONDS = 120.0


def established_to(port: int) -> int:
    """Connections in this network namespace whose remote end is ``port`` on loopback:
    the client sides of connections to a lab of its own port."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == ESTABLISHED:
                count += 1
    return count


async def settled(port: int, most: int) -> int:
    """The count once it is at most ``most`` (closing is asynchronous), or after a while."""
    deadline = time.monotonic() + SETTLE_SECONDS
    count = established_to(port)
    while count > most and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = established_to(port)
    return count


def rotated(node: str, url: str, generation: int) -> NifiEndpoint:
    return endpoint_for(
        node,
        url,
        auth=AuthMode.USERNAME_PASSWORD,
        username="admin",
        password=f"password-{generation}",
    )


async def test_no_connection_leaks_after_100_endpoint_changes() -> None:
    async with NifiLab(keep_alive=KEEP_ALIVE_SECONDS) as lab:
        node = lab.add_instance("rotating", users={"admin": "password-0"})
        async with NifiClientPool(retry=FAST_RETRY) as pool:
            for generation in range(CHANGES):
                node.users = {"admin": f"password-{generation}"}
                client = pool.get(rotated(node.name, node.url, generation))
                assert (await client.about()).title == "NiFi"
            # Only the current client's connection stays open.
            assert await settled(lab.port, 1) == 1
            assert node.login_count == CHANGES
        assert await settled(lab.port, 0) == 0


async def test_a_client_in_use_is_closed_after_its_last_request() -> None:
    async with NifiLab(keep_alive=KEEP_ALIVE_SECONDS) as lab:
        node = lab.add_instance("slow", latency=0.3)
        async with NifiClientPool(retry=FAST_RETRY) as pool:
            old = pool.get(endpoint_for(node.name, node.url))
            busy = asyncio.create_task(old.about())
            await asyncio.sleep(0.1)
            new = pool.get(endpoint_for(node.name, node.url, read_timeout=5.0))
            assert new is not old
            assert not old.closed  # the request in flight keeps it open
            assert (await busy).title == "NiFi"
            assert old.closed
            assert (await new.about()).title == "NiFi"
            assert await settled(lab.port, 1) == 1

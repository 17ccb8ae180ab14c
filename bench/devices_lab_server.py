"""The device lab for ``bench.devices``, in a process of its own so that the simulated
devices' CPU (their half of every SSH handshake and command) does not count against the
worker being measured.

``python -m bench.devices_lab_server DEVICES LATENCY`` serves a generated Nautobot
inventory of DEVICES devices and one SSH listener per device on loopback, each answering
every command after LATENCY seconds. It prints one JSON line ``{"nautobot": url,
"token": token, "username": user, "password": password}`` and serves until its stdin
closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys

from lab.devices import attach_ssh_ports, fleet_for
from lab.nautobot import NautobotLab
from lab.nautobot_inventory import generate_inventory

TOKEN = "bench-nautobot-token"
USERNAME = "bench"
PASSWORD = "bench-device-password"


def raise_file_limit() -> None:
    """One listener per device plus one connection per session: lift the soft fd limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(devices: int, latency: float) -> None:
    inventory = generate_inventory(devices)
    fleet = fleet_for(inventory, username=USERNAME, password=PASSWORD)
    for device in fleet.devices.values():
        device.latency = latency
    async with fleet:
        attach_ssh_ports(inventory, fleet)
        async with NautobotLab(inventory, token=TOKEN) as nautobot:
            print(
                json.dumps(
                    {
                        "nautobot": nautobot.url,
                        "token": TOKEN,
                        "username": USERNAME,
                        "password": PASSWORD,
                    }
                ),
                flush=True,
            )
            # The parent closes our stdin when it is done with us.
            await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise_file_limit()
    count, delay = sys.argv[1:3]
    asyncio.run(serve(int(count), float(delay)))

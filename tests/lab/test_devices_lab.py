from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncssh
import pytest

from lab.devices import DeviceFleet, attach_ssh_ports, fleet_for, make_device
from lab.devices_cli import DIALECTS
from lab.nautobot_inventory import generate_inventory

PLATFORMS = tuple(DIALECTS)


@pytest.fixture
async def fleet() -> AsyncIterator[DeviceFleet]:
    devices = [make_device(f"{platform}-9", platform, page_lines=10) for platform in PLATFORMS]
    async with DeviceFleet(devices, username="ops", password="pw") as running:
        yield running


async def shell(
    fleet: DeviceFleet, name: str, *, password: str | None = None
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[str]]:
    conn = await asyncssh.connect(
        "127.0.0.1",
        fleet.device(name).port,
        username=fleet.username,
        password=password or fleet.password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        config=None,
    )
    process = await conn.create_process(term_type="vt100")
    return conn, process


async def read_until(process: asyncssh.SSHClientProcess[str], *ends: str) -> str:
    text = ""
    while not text.rstrip(" ").endswith(tuple(end.rstrip(" ") for end in ends)):
        chunk = await process.stdout.read(4096)
        assert chunk, f"closed after {text!r}"
        text += chunk
    return text


async def read_all(process: asyncssh.SSHClientProcess[str]) -> tuple[str, bool]:
    """Everything until the end, and whether the connection was lost rather than closed."""
    text = ""
    try:
        while chunk := await process.stdout.read(4096):
            text += chunk
    except asyncssh.ConnectionLost:
        return text, True
    return text, False


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_prompt_paging_and_paging_off(fleet: DeviceFleet, platform: str) -> None:
    dialect = DIALECTS[platform]
    simulated = fleet.device(f"{platform}-9")
    prompt = dialect.prompt(simulated.name, "ops")
    conn, process = await shell(fleet, simulated.name)
    async with conn:
        banner = await read_until(process, prompt)
        assert banner.endswith(prompt)
        assert platform in banner

        process.stdin.write(dialect.running_command + "\n")
        first_page = await read_until(process, dialect.more)
        assert first_page.startswith(dialect.running_command + "\r\n")
        assert first_page.count("\r\n") == 1 + simulated.page_lines
        process.stdin.write("q")
        await read_until(process, prompt)

        process.stdin.write(dialect.paging_off[0] + "\n")
        await read_until(process, prompt)
        process.stdin.write(dialect.running_command + "\n")
        whole = await read_until(process, prompt)
        assert dialect.more.strip() not in whole
        assert simulated.running_config.replace("\n", "\r\n") in whole

        if dialect.startup_command:
            process.stdin.write(dialect.startup_command + "\n")
            assert simulated.startup_config.replace("\n", "\r\n") in await read_until(  # type: ignore[union-attr]
                process, prompt
            )
        process.stdin.write("no such command\n")
        assert dialect.invalid in await read_until(process, prompt)
        process.stdin.write("exit\n")
        assert await process.stdout.read() == "exit\r\n"
    assert simulated.commands[0] == dialect.running_command


async def test_space_pages_through_to_the_end(fleet: DeviceFleet) -> None:
    simulated = fleet.device("cisco_ios-9")
    conn, process = await shell(fleet, simulated.name)
    async with conn:
        await read_until(process, "cisco_ios-9#")
        process.stdin.write("show startup-config\n")
        text = ""
        while not text.endswith("cisco_ios-9#"):
            text += await read_until(process, " --More-- ", "cisco_ios-9#")
            if text.endswith(" --More-- "):
                process.stdin.write(" ")
        pages = text.count("--More--")
        assert pages == (len(simulated.startup_config.splitlines()) + 1) // 10  # type: ignore[union-attr]
        assert "hostname cisco_ios-9" in text


async def test_latency_configs_and_outputs_are_mutable(fleet: DeviceFleet) -> None:
    simulated = fleet.device("arista_eos-9")
    simulated.latency = 0.2
    simulated.running_config = "hostname changed\nend\n"
    simulated.outputs["show clock"] = "Mon Jan 1 00:00:00 2024\n"
    conn, process = await shell(fleet, simulated.name)
    async with conn:
        await read_until(process, "arista_eos-9#")
        started = time.monotonic()
        process.stdin.write("show clock\n")
        assert "Mon Jan 1" in await read_until(process, "arista_eos-9#")
        assert time.monotonic() - started >= 0.2
        process.stdin.write("terminal length 0\nshow running-config\n")
        text = await read_until(process, "hostname changed\r\nend\r\narista_eos-9#")
        assert "! Time:" in text


async def test_refused_login_and_dropped_connection(fleet: DeviceFleet) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await shell(fleet, "cisco_nxos-9", password="wrong")
    simulated = fleet.device("cisco_nxos-9")
    simulated.refuse_logins = True
    with pytest.raises(asyncssh.PermissionDenied):
        await shell(fleet, "cisco_nxos-9")
    simulated.refuse_logins = False
    simulated.disconnect_on = "show version"
    conn, process = await shell(fleet, "cisco_nxos-9")
    async with conn:
        await read_until(process, "cisco_nxos-9#")
        process.stdin.write("show version\n")
        text, lost = await read_all(process)
        assert lost
        assert text.startswith("show version\r\nCisco Nexus")
        assert not text.endswith("cisco_nxos-9#")
    assert simulated.logins == 1


async def test_fleet_serves_a_generated_inventory() -> None:
    inventory = generate_inventory(40)
    fleet = fleet_for(inventory)
    async with fleet:
        attach_ssh_ports(inventory, fleet)
        ports = {d.custom_fields["ssh_port"] for d in inventory.devices}
        assert len(ports) == 40
        assert all(fleet.device_on_port(int(p)) is not None for p in ports)
        first = inventory.devices[0]
        assert fleet.device_on_port(first.custom_fields["ssh_port"]).name == first.name  # type: ignore[union-attr]
        assert first.primary_ip4 == "127.0.0.1/32"
        conn, process = await shell(fleet, first.name)
        async with conn:
            await read_until(process, f"{first.name}#", f"lab@{first.name}> ")
    assert fleet.peak_sessions == 1

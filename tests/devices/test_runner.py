from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path
from types import MappingProxyType

import asyncssh
import pytest

from lab.devices import DeviceFleet, make_device
from lab.devices_cli import DIALECTS
from service.devices.host_keys import KnownHosts, known_hosts_line
from service.devices.runner import SshCredentials, SshOptions, SshRunner
from tests.devices.conftest import CREDENTIALS, PLATFORMS, device_for


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_configs_per_platform(fleet: DeviceFleet, runner: SshRunner, platform: str) -> None:
    simulated = fleet.device(f"{platform}-1")
    result = await runner.fetch_configs(device_for(simulated), CREDENTIALS)
    assert result.ok, result.error
    # The volatile header (timestamps, sizes) is gone; the body is exactly the device's.
    assert result.running == simulated.running_config
    if platform == "juniper_junos":
        assert result.startup is None
        assert simulated.commands == ["set cli screen-length 0", "show configuration"]
    else:
        assert result.startup == simulated.startup_config
        assert simulated.commands == [
            "terminal length 0",
            "show running-config",
            "show startup-config",
        ]
    assert (result.host, result.port, result.platform) == ("127.0.0.1", simulated.port, platform)


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_pager_prompts_are_answered_when_paging_stays_on(
    fleet: DeviceFleet, runner: SshRunner, platform: str
) -> None:
    simulated = fleet.device(f"{platform}-1")
    simulated.ignores_paging_off = True
    simulated.page_lines = 5
    result = await runner.fetch_configs(device_for(simulated), CREDENTIALS)
    assert result.ok, result.error
    assert result.running == simulated.running_config
    assert "more" not in (result.running or "").lower()


async def test_configs_changed_between_runs_are_read_fresh(
    fleet: DeviceFleet, runner: SshRunner
) -> None:
    simulated = fleet.device("cisco_ios-1")
    first = await runner.fetch_configs(device_for(simulated), CREDENTIALS)
    simulated.running_config = simulated.running_config.replace("uplink 3", "core link 3")
    simulated.startup_config = None
    second = await runner.fetch_configs(device_for(simulated), CREDENTIALS)
    assert first.running != second.running
    assert "core link 3" in (second.running or "")
    assert second.startup == ""  # "startup-config is not present"


async def test_run_commands_returns_each_output_without_echo_or_prompt(
    fleet: DeviceFleet, runner: SshRunner
) -> None:
    simulated = fleet.device("juniper_junos-1")
    simulated.outputs["show chassis alarms"] = "No alarms currently active\n"
    result = await runner.run_commands(
        device_for(simulated), CREDENTIALS, ["show version", "show chassis alarms", "frobnicate"]
    )
    assert result.ok
    assert [o.command for o in result.outputs] == [
        "show version",
        "show chassis alarms",
        "frobnicate",
    ]
    assert result.outputs[0].output.startswith(f"Hostname: {simulated.name}\n")
    assert result.outputs[1].output == "No alarms currently active\n"
    # A refused command is output for the operator to read, not a device failure.
    assert result.outputs[2].output == "error: syntax error\n"
    assert all("lab@" not in o.output for o in result.outputs)


async def test_a_dropped_connection_keeps_earlier_outputs(
    fleet: DeviceFleet, runner: SshRunner
) -> None:
    simulated = fleet.device("arista_eos-1")
    simulated.disconnect_on = "show running-config"
    result = await runner.run_commands(
        device_for(simulated), CREDENTIALS, ["show version", "show running-config", "show clock"]
    )
    assert result.error_code == "disconnected"
    assert [o.command for o in result.outputs] == ["show version"]
    assert "Arista" in result.outputs[0].output


async def test_a_slow_command_times_out_and_keeps_earlier_outputs(
    fleet: DeviceFleet, known_hosts: KnownHosts
) -> None:
    simulated = fleet.device("cisco_nxos-1")
    simulated.outputs["show tech-support"] = "lots\n"
    runner = SshRunner(known_hosts, SshOptions(command_timeout=0.3))
    simulated.latency = 0.05
    first = await runner.run_commands(device_for(simulated), CREDENTIALS, ["show version"])
    assert first.ok
    simulated.latency = 1.0
    result = await runner.run_commands(device_for(simulated), CREDENTIALS, ["show tech-support"])
    assert result.error_code == "timeout"
    assert "timed out after 0.3 s" in (result.error or "")


@pytest.mark.parametrize(
    ("credentials", "refuse"),
    [
        (SshCredentials("lab", "wrong"), False),
        (CREDENTIALS, True),
        (SshCredentials("x", "lab-password"), False),
    ],
)
async def test_refused_logins(
    fleet: DeviceFleet, runner: SshRunner, credentials: SshCredentials, refuse: bool
) -> None:
    simulated = fleet.device("cisco_ios-1")
    simulated.refuse_logins = refuse
    result = await runner.run_commands(device_for(simulated), credentials, ["show version"])
    assert result.error_code == "auth_failed"
    assert result.outputs == ()


async def test_key_authentication(tmp_path: Path, known_hosts: KnownHosts) -> None:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    text = client_key.export_private_key().decode()
    async with DeviceFleet(
        [make_device("r1", "cisco_ios")], authorized_keys=[client_key.convert_to_public()]
    ) as fleet:
        runner = SshRunner(known_hosts)
        result = await runner.run_commands(
            device_for(fleet.device("r1")),
            SshCredentials("lab", private_key=text),
            ["show version"],
        )
    assert result.ok, result.error


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_addressing_failures_fail_only_that_device(
    fleet: DeviceFleet, runner: SshRunner
) -> None:
    ios = fleet.device("cisco_ios-1")
    devices = [
        device_for(ios),
        device_for(fleet.device("juniper_junos-1"), primary_ip4=None),
        device_for(fleet.device("arista_eos-1"), port=closed_port()),
        device_for(fleet.device("cisco_nxos-1"), network_driver=None, platform="PAN-OS"),
        device_for(ios, name="bad-port", port="ssh"),  # type: ignore[arg-type]
    ]
    results = await runner.run_commands_many(devices, CREDENTIALS, ["show version"])
    assert [r.device_name for r in results] == [d.name for d in devices]
    assert [r.error_code for r in results] == [
        None,
        "no_address",
        "unreachable",
        "unsupported_platform",
        "no_address",
    ]
    assert "Cisco IOS XE" in results[0].outputs[0].output


async def test_partial_failure_keeps_every_other_device_output(
    known_hosts: KnownHosts,
) -> None:
    simulated = [make_device(f"r{i}", PLATFORMS[i % 4]) for i in range(12)]
    simulated[3].refuse_logins = True
    simulated[7].disconnect_on = "show clock"
    async with DeviceFleet(simulated) as fleet:
        runner = SshRunner(known_hosts, SshOptions(max_sessions=4))
        devices = [device_for(s) for s in fleet.devices.values()]
        results = await runner.run_commands_many(
            devices, CREDENTIALS, lambda device: ["show version", "show clock"]
        )
    failed = {r.device_name: r.error_code for r in results if not r.ok}
    assert failed == {"r3": "auth_failed", "r7": "disconnected"}
    for result in results:
        if result.ok:
            assert len(result.outputs) == 2
            assert result.outputs[0].output.strip()
    assert [o.command for o in results[7].outputs] == ["show version"]


async def test_session_limits_global_and_per_site(known_hosts: KnownHosts) -> None:
    simulated = [make_device(f"r{i}", "cisco_ios", latency=0.1) for i in range(6)]
    async with DeviceFleet(simulated) as fleet:
        one_site = [device_for(s, site="fra1") for s in simulated]
        per_site = SshRunner(known_hosts, SshOptions(max_sessions=10, max_sessions_per_site=2))
        assert all(r.ok for r in await per_site.run_commands_many(one_site, CREDENTIALS, ["x"]))
        assert fleet.peak_sessions == 2

        fleet.peak_sessions = 0
        six_sites = [device_for(s, site=f"site{i}") for i, s in enumerate(simulated)]
        results = await per_site.run_commands_many(six_sites, CREDENTIALS, ["x"])
        assert all(r.ok for r in results)
        assert fleet.peak_sessions == 6

        fleet.peak_sessions = 0
        global_limit = SshRunner(known_hosts, SshOptions(max_sessions=3))
        assert all(
            r.ok for r in await global_limit.run_commands_many(six_sites, CREDENTIALS, ["x"])
        )
        assert fleet.peak_sessions == 3


async def test_default_port_applies_without_the_custom_field(
    fleet: DeviceFleet, known_hosts: KnownHosts
) -> None:
    simulated = fleet.device("cisco_ios-1")
    device = dataclasses.replace(device_for(simulated), custom_fields=MappingProxyType({}))
    runner = SshRunner(known_hosts, SshOptions(default_port=simulated.port))
    result = await runner.run_commands(device, CREDENTIALS, ["show version"])
    assert result.ok, result.error
    assert result.port == simulated.port
    other = SshRunner(known_hosts, SshOptions(port_field="mgmt_port", default_port=closed_port()))
    assert (await other.run_commands(device_for(simulated), CREDENTIALS, ["x"])).error_code == (
        "unreachable"
    )


async def test_accept_new_records_keys_and_rejects_changed_ones(
    fleet: DeviceFleet, tmp_path: Path
) -> None:
    path = tmp_path / "known_hosts"
    simulated = fleet.device("cisco_ios-1")
    first = SshRunner(await KnownHosts.load(path, accept_new=True))
    assert (await first.run_commands(device_for(simulated), CREDENTIALS, ["x"])).ok
    assert path.read_text() == known_hosts_line("127.0.0.1", simulated.port, fleet.host_key)

    # A strict runner trusts the recorded key.
    strict = SshRunner(await KnownHosts.load(path))
    assert (await strict.run_commands(device_for(simulated), CREDENTIALS, ["x"])).ok

    # The same address and port now presents another key: rejected even in accept-new.
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    path.write_text(known_hosts_line("127.0.0.1", simulated.port, impostor))
    for accept_new in (True, False):
        runner = SshRunner(await KnownHosts.load(path, accept_new=accept_new))
        result = await runner.run_commands(device_for(simulated), CREDENTIALS, ["x"])
        assert result.error_code == "host_key_rejected"
    assert simulated.logins == 2


async def test_concurrent_first_connections_to_one_device_all_succeed(
    fleet: DeviceFleet, tmp_path: Path
) -> None:
    """Every connection looks up the trusted keys before its handshake; the ones that
    started before the first recorded the key meet a recorded key that is the same."""
    path = tmp_path / "known_hosts"
    simulated = fleet.device("cisco_nxos-1")
    runner = SshRunner(await KnownHosts.load(path, accept_new=True))
    results = await asyncio.gather(
        *(runner.run_commands(device_for(simulated), CREDENTIALS, ["x"]) for _ in range(8))
    )
    assert [result.error for result in results] == [None] * 8
    assert simulated.logins == 8
    assert path.read_text() == known_hosts_line("127.0.0.1", simulated.port, fleet.host_key)


def test_accept_new_compares_a_key_offered_after_one_was_recorded(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts", "", accept_new=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    same = asyncssh.import_public_key(key.export_public_key())
    other = asyncssh.generate_private_key("ssh-ed25519")
    assert known.admit("10.0.0.1", "10.0.0.1", 22, key)
    assert known.admit("10.0.0.1", "10.0.0.1", 22, same)
    assert not known.admit("10.0.0.1", "10.0.0.1", 22, other)
    # Another device (another port) is another host: its first key is recorded.
    assert known.admit("10.0.0.1", "10.0.0.1", 2222, other)


async def test_strict_mode_rejects_unknown_hosts(fleet: DeviceFleet, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    with pytest.raises(FileNotFoundError):
        await KnownHosts.load(path)
    path.write_text("")
    runner = SshRunner(await KnownHosts.load(path))
    result = await runner.run_commands(device_for(fleet.device("cisco_ios-1")), CREDENTIALS, ["x"])
    assert result.error_code == "host_key_rejected"
    assert path.read_text() == ""


async def test_session_context_for_custom_flows(fleet: DeviceFleet, runner: SshRunner) -> None:
    simulated = fleet.device("arista_eos-1")
    async with runner.session(device_for(simulated), CREDENTIALS) as session:
        assert session.prompt == f"{simulated.name}#"
        assert session.profile.name == "arista_eos"
        assert "Arista" in await session.run("show version")
        assert await session.run("show clock", wait=2) == "% Invalid input\n"
    assert simulated.commands == [
        DIALECTS["arista_eos"].paging_off[0],
        "show version",
        "show clock",
    ]

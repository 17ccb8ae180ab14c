"""SSH device simulators: one asyncssh listener per device on a loopback port.

A :class:`DeviceFleet` serves many :class:`SimDevice` objects from one process with one
shared host key and one shared set of server options; a connection finds its device by
the local port it arrived on, so a Nautobot lab can point each device's ``ssh_port``
custom field at it (see :func:`attach_ssh_ports`). Each device speaks its platform's CLI
(:mod:`lab.devices_cli`): prompt, ``--More--`` paging until the platform's
paging command, configuration commands whose output tests may change between runs, a
per-command latency, refused logins and dropped connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import asyncssh

from lab.devices_cli import (
    DIALECTS,
    CliDialect,
    running_config_output,
    sample_config,
    startup_config_output,
    version_output,
)
from lab.nautobot_inventory import LabInventory

logger = logging.getLogger(__name__)

_CLOSE_COMMANDS = frozenset({"exit", "quit", "logout"})


@dataclass
class SimDevice:
    """A simulated device; every attribute may be changed while the fleet runs."""

    name: str
    platform: str
    running_config: str = ""
    startup_config: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    page_lines: int = 24
    refuse_logins: bool = False
    #: Drop the connection half-way through the answer to this command.
    disconnect_on: str | None = None
    #: Accept the paging command but keep paging (a device a pager prompt must handle).
    ignores_paging_off: bool = False
    port: int = 0
    commands: list[str] = field(default_factory=list)
    logins: int = 0

    @property
    def dialect(self) -> CliDialect:
        return DIALECTS[self.platform]


def make_device(name: str, platform: str, **changes: object) -> SimDevice:
    """A device with a sample configuration saved as its startup configuration too."""
    config = sample_config(name, platform)
    startup = None if DIALECTS[platform].startup_command is None else config
    device = SimDevice(name, platform, running_config=config, startup_config=startup)
    for attribute, value in changes.items():
        setattr(device, attribute, value)
    return device


class _Input:
    """Keys typed by the client, read as lines or as single pager keys."""

    def __init__(self, process: asyncssh.SSHServerProcess[str]) -> None:
        self._process = process
        self._buffer = ""

    async def _fill(self) -> bool:
        data = await self._process.stdin.read(4096)
        self._buffer += data
        return bool(data)

    async def line(self) -> str | None:
        while True:
            for index, char in enumerate(self._buffer):
                if char in "\r\n":
                    line = self._buffer[:index]
                    skip = 2 if self._buffer[index : index + 2] == "\r\n" else 1
                    self._buffer = self._buffer[index + skip :]
                    return line
            if not await self._fill():
                return None

    async def key(self) -> str | None:
        if not self._buffer and not await self._fill():
            return None
        key, self._buffer = self._buffer[0], self._buffer[1:]
        return key


class _Server(asyncssh.SSHServer):
    def __init__(self, fleet: DeviceFleet) -> None:
        self._fleet = fleet
        self._device: SimDevice | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._device = self._fleet.device_on_port(conn.get_extra_info("sockname")[1])

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._admit(username) and password == self._fleet.password

    def public_key_auth_supported(self) -> bool:
        return bool(self._fleet.authorized_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        wanted = key.export_public_key()
        authorized = (k.export_public_key() for k in self._fleet.authorized_keys)
        return self._admit(username) and wanted in authorized

    def _admit(self, username: str) -> bool:
        device = self._device
        return device is not None and not device.refuse_logins and username == self._fleet.username


class DeviceFleet:
    """Listeners for many simulated devices on ``host`` (ports picked by the OS)."""

    def __init__(
        self,
        devices: Iterable[SimDevice],
        *,
        username: str = "lab",
        password: str = "lab-password",
        authorized_keys: Iterable[asyncssh.SSHKey] = (),
        host: str = "127.0.0.1",
        host_key: asyncssh.SSHKey | None = None,
    ) -> None:
        self.devices = {device.name: device for device in devices}
        self.username = username
        self.password = password
        self.authorized_keys = list(authorized_keys)
        self.host = host
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self._by_port: dict[int, SimDevice] = {}
        self._listeners: list[asyncssh.SSHAcceptor] = []
        #: Shells open now, and the most open at once (for concurrency-limit tests).
        self.active_sessions = 0
        self.peak_sessions = 0

    def device(self, name: str) -> SimDevice:
        return self.devices[name]

    def device_on_port(self, port: int) -> SimDevice | None:
        return self._by_port.get(port)

    async def start(self) -> None:
        """Open one listener per device; all share the host key and server options."""
        options = asyncssh.SSHServerConnectionOptions(
            server_factory=lambda: _Server(self),
            server_host_keys=[self.host_key],
            process_factory=self._serve,
            line_editor=False,
        )
        for device in self.devices.values():
            listener = await asyncssh.listen(self.host, device.port, options=options)
            device.port = listener.get_port()
            self._by_port[device.port] = device
            self._listeners.append(listener)

    async def stop(self) -> None:
        """Close every listener (open sessions end with them)."""
        for listener in self._listeners:
            listener.close()
        await asyncio.gather(*(listener.wait_closed() for listener in self._listeners))
        self._listeners.clear()
        self._by_port.clear()

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

    async def _serve(self, process: asyncssh.SSHServerProcess[str]) -> None:
        conn = process.get_extra_info("connection")
        device = self.device_on_port(conn.get_extra_info("sockname")[1])
        if device is None:
            process.exit(1)
            return
        device.logins += 1
        self.active_sessions += 1
        self.peak_sessions = max(self.peak_sessions, self.active_sessions)
        try:
            await _Shell(device, process, self.username).run()
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            logger.debug("session with lab device %s ended abruptly", device.name)
        finally:
            self.active_sessions -= 1
            process.exit(0)


class _Shell:
    def __init__(
        self, device: SimDevice, process: asyncssh.SSHServerProcess[str], username: str
    ) -> None:
        self._device = device
        self._dialect = device.dialect
        self._process = process
        self._input = _Input(process)
        self._prompt = self._dialect.prompt(device.name, username)
        self._paging = True
        self._pending: list[str] = []

    def _write(self, text: str) -> None:
        # Output is collected and sent in one channel write per step, as a device's
        # line buffer would: fewer SSH packets for both sides.
        self._pending.append(text.replace("\n", "\r\n"))

    def _flush(self) -> None:
        if self._pending:
            self._process.stdout.write("".join(self._pending))
            self._pending.clear()

    async def run(self) -> None:
        self._write(f"\n{self._device.name} lab device ({self._dialect.platform})\n\n")
        self._pending.append(self._prompt)
        while True:
            self._flush()
            line = await self._input.line()
            if line is None:
                return
            self._write(line + "\n")  # the terminal echo
            command = " ".join(line.split())
            if command in _CLOSE_COMMANDS:
                self._flush()
                return
            if command:
                self._device.commands.append(command)
                if not await self._answer(command):
                    return
            self._pending.append(self._prompt)

    async def _answer(self, command: str) -> bool:
        device = self._device
        if command in self._dialect.paging_off:
            self._paging = device.ignores_paging_off
            return True
        if device.latency:
            self._flush()
            await asyncio.sleep(device.latency)
        output = self._output(command)
        if command == device.disconnect_on:
            self._write(output[: len(output) // 2])
            self._flush()
            self._process.get_extra_info("connection").abort()
            return False
        return await self._page(output)

    def _output(self, command: str) -> str:
        device, dialect = self._device, self._dialect
        if command in device.outputs:
            return device.outputs[command]
        if command == dialect.running_command:
            return running_config_output(device.platform, device.running_config)
        if command == dialect.startup_command:
            return startup_config_output(device.platform, device.startup_config)
        if command == "show version":
            return version_output(device.name, device.platform)
        if command.startswith(("terminal ", "set cli ")):
            return ""
        return dialect.invalid + "\n"

    async def _page(self, output: str) -> bool:
        lines = output.splitlines(keepends=True)
        size = self._device.page_lines
        if not self._paging or len(lines) <= size:
            self._write(output)
            return True
        for start in range(0, len(lines), size):
            self._write("".join(lines[start : start + size]))
            if start + size >= len(lines):
                break
            self._pending.append(self._dialect.more)
            self._flush()
            key = await self._input.key()
            if key is None:
                return False
            self._pending.append(self._dialect.more_erase)
            if key in "qQ":
                break
        return True


def attach_ssh_ports(
    inventory: LabInventory, fleet: DeviceFleet, *, field: str = "ssh_port"
) -> None:
    """Point each Nautobot lab device at its simulator: primary IPv4 and port custom field."""
    for lab_device in inventory.devices:
        simulated = fleet.devices.get(lab_device.name)
        if simulated is None:
            continue
        lab_device.primary_ip4 = f"{fleet.host}/32"
        lab_device.custom_fields[field] = simulated.port
    inventory.custom_fields.add(field)


def fleet_for(
    inventory: LabInventory, *, username: str = "lab", password: str = "lab-password"
) -> DeviceFleet:
    """A fleet with one simulated device per Nautobot lab device on a lab platform."""
    devices = [
        make_device(d.name, d.platform.network_driver)
        for d in inventory.devices
        if d.platform is not None and d.platform.network_driver in DIALECTS
    ]
    return DeviceFleet(devices, username=username, password=password)

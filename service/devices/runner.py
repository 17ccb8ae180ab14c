"""SSH work on many devices: connections, limits, and per-device results.

One :class:`SshRunner` is made per worker (or per job) with the host-key policy and the
options, and shared by every device task. It bounds sessions globally and per site (a
site is the device's own Nautobot location), reaches each device at its primary IPv4 on
the port from its ``ssh_port`` custom field (or the default), and turns every device
failure into a result instead of an exception, so one device cannot lose another's
output. Credentials arrive already decrypted from the caller and live only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncssh

from service.devices.endpoints import ssh_endpoint
from service.devices.errors import (
    AuthenticationFailed,
    CommandRefused,
    DeviceError,
    DeviceTimeout,
    Disconnected,
    HostKeyRejected,
    Unreachable,
)
from service.devices.host_keys import HostKeyClient, KnownHosts
from service.devices.platforms import PlatformProfile, UnsupportedPlatform, profile_for
from service.devices.results import CommandOutput, CommandsResult, ConfigResult
from service.devices.session import TERM_SIZE, DeviceSession
from service.inventory.device import Device
from service.queue.leases import Leases, Slot

logger = logging.getLogger(__name__)

#: Ciphers tried first: AES-GCM runs in OpenSSL, while asyncssh's ChaCha20 pays Python
#: overhead per packet; the remaining defaults stay available for older devices.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class SshCredentials:
    """A decrypted login: a password, a private key (OpenSSH/PEM text), or both."""

    username: str
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("an SSH username is required")
        if not self.password and not self.private_key:
            raise ValueError("an SSH password or private key is required")


@dataclass(frozen=True)
class SshOptions:
    """Timeouts, limits and addressing for device sessions."""

    connect_timeout: float = 30.0
    command_timeout: float = 60.0
    max_sessions: int = 100
    max_sessions_per_site: int = 20
    # Sessions at once per device over every worker (with leases).
    max_sessions_per_device: int = 1
    port_field: str = "ssh_port"
    default_port: int = 22


def _cipher_order() -> list[str]:
    defaults = [alg.decode() for alg in asyncssh.encryption.get_default_encryption_algs()]
    preferred = [alg for alg in PREFERRED_CIPHERS if alg in defaults]
    return preferred + [alg for alg in defaults if alg not in preferred]


class SshRunner:
    """Opens device sessions within the limits and runs commands on them."""

    def __init__(
        self,
        known_hosts: KnownHosts,
        options: SshOptions | None = None,
        leases: Leases | None = None,
    ) -> None:
        """``leases`` makes the per-device and per-site limits hold across every worker
        process; without them (a lone process) the site limit holds in this process."""
        self.options = options or SshOptions()
        self._leases = leases
        self._known_hosts = known_hosts
        self._sessions = asyncio.Semaphore(self.options.max_sessions)
        self._sites: dict[str, asyncio.Semaphore] = {}
        self._client_options: dict[SshCredentials, asyncssh.SSHClientConnectionOptions] = {}
        self._ciphers = _cipher_order()

    def _site_limit(self, device: Device) -> asyncio.Semaphore:
        site = device.location or ""
        limit = self._sites.get(site)
        if limit is None:
            limit = self._sites[site] = asyncio.Semaphore(self.options.max_sessions_per_site)
        return limit

    def _shared_slots(self, device: Device) -> contextlib.AbstractAsyncContextManager[None]:
        if self._leases is None:
            return contextlib.nullcontext()
        options = self.options
        return self._leases.hold(
            [
                Slot(f"device:{device.id}", options.max_sessions_per_device),
                Slot(f"site:{device.location or ''}", options.max_sessions_per_site),
            ]
        )

    async def _options_for(
        self, credentials: SshCredentials
    ) -> asyncssh.SSHClientConnectionOptions:
        options = self._client_options.get(credentials)
        if options is None:
            keys = None
            if credentials.private_key:
                keys = [
                    asyncssh.import_private_key(credentials.private_key, credentials.passphrase)
                ]
            known_hosts = self._known_hosts
            options = await asyncssh.SSHClientConnectionOptions.construct(
                username=credentials.username,
                password=credentials.password,
                client_keys=keys,
                known_hosts=known_hosts.trusted,
                client_factory=lambda: HostKeyClient(known_hosts),
                agent_path=None,
                encryption_algs=self._ciphers,
                connect_timeout=self.options.connect_timeout,
            )
            self._client_options[credentials] = options
        return options

    async def _connect(
        self, host: str, port: int, credentials: SshCredentials
    ) -> asyncssh.SSHClientConnection:
        options = await self._options_for(credentials)
        where = f"{host}:{port}"
        try:
            conn = await asyncssh.connect(host, port, options=options, config=None)
        except TimeoutError:
            timeout = self.options.connect_timeout
            raise DeviceTimeout(f"connecting to {where} timed out after {timeout:g} s") from None
        except asyncssh.PermissionDenied:
            raise AuthenticationFailed(
                f"{where} refused the login of {credentials.username!r}"
            ) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRejected(f"host key of {where} not accepted: {exc.reason}") from None
        except asyncssh.DisconnectError as exc:
            raise Disconnected(f"{where} closed the connection: {exc.reason}") from None
        except OSError as exc:
            raise Unreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
        await self._known_hosts.flush()
        return conn

    @asynccontextmanager
    async def session(
        self, device: Device, credentials: SshCredentials
    ) -> AsyncIterator[DeviceSession]:
        """A started shell on ``device``, holding a site slot and a global slot.

        Raises :class:`DeviceError` (or :class:`UnsupportedPlatform`) on failure.
        """
        profile = profile_for(device.network_driver, device.platform)
        host, port = self._endpoint(device)
        async with self._open(device, profile, host, port, credentials) as session:
            yield session

    def _endpoint(self, device: Device) -> tuple[str, int]:
        return ssh_endpoint(
            device, port_field=self.options.port_field, default_port=self.options.default_port
        )

    @asynccontextmanager
    async def _open(
        self,
        device: Device,
        profile: PlatformProfile,
        host: str,
        port: int,
        credentials: SshCredentials,
    ) -> AsyncIterator[DeviceSession]:
        # The device's and site's slots first: holding a global slot while queueing for a
        # busy site would starve the other sites.
        async with self._shared_slots(device), self._site_limit(device), self._sessions:
            conn = await self._connect(host, port, credentials)
            try:
                try:
                    process = await conn.create_process(
                        term_type="vt100", term_size=TERM_SIZE, errors="replace"
                    )
                except (asyncssh.Error, OSError) as exc:
                    raise Disconnected(f"{host}:{port} refused a shell: {exc}") from None
                session = DeviceSession(
                    process, profile, command_timeout=self.options.command_timeout
                )
                await session.start(wait=self.options.command_timeout)
                yield session
            finally:
                # Closing the connection ends the shell too, without a channel-close
                # exchange per device.
                conn.close()

    async def run_commands(
        self, device: Device, credentials: SshCredentials, commands: Sequence[str]
    ) -> CommandsResult:
        """Run ``commands`` in one session; never raises for a device failure."""
        started = time.monotonic()
        outputs: list[CommandOutput] = []
        host: str | None = None
        port: int | None = None
        error: str | None
        code: str | None
        try:
            profile = profile_for(device.network_driver, device.platform)
            host, port = self._endpoint(device)
            async with self._open(device, profile, host, port, credentials) as session:
                for command in commands:
                    outputs.append(CommandOutput(command, await session.run(command)))
        except (DeviceError, UnsupportedPlatform) as exc:
            error, code = exc.message, exc.code
        except Exception as exc:
            # A per-device boundary: an unexpected failure is this device's, not the run's.
            logger.exception(
                "unexpected failure on device %s", device.name, extra={"device_id": device.id}
            )
            error, code = f"unexpected error: {exc}", "internal_error"
        else:
            error = code = None
        return CommandsResult(
            device_id=device.id,
            device_name=device.name,
            host=host,
            port=port,
            platform=device.network_driver or device.platform,
            outputs=tuple(outputs),
            error=error,
            error_code=code,
            duration=time.monotonic() - started,
        )

    async def run_commands_many(
        self,
        devices: Sequence[Device],
        credentials: SshCredentials,
        commands: Sequence[str] | Callable[[Device], Sequence[str]],
    ) -> list[CommandsResult]:
        """``run_commands`` on every device concurrently (within the limits), in order."""

        def commands_for(device: Device) -> Sequence[str]:
            return commands(device) if callable(commands) else commands

        return list(
            await asyncio.gather(
                *(self.run_commands(d, credentials, commands_for(d)) for d in devices)
            )
        )

    async def fetch_configs(self, device: Device, credentials: SshCredentials) -> ConfigResult:
        """Read the running (and, where the platform has one, startup) configuration.

        Volatile lines are removed (see :meth:`PlatformProfile.clean_config`); a command
        the device refuses fails the device, keeping what was read before it.
        """
        started = time.monotonic()
        configs: dict[str, str | None] = {"running": None, "startup": None}
        host: str | None = None
        port: int | None = None
        error: str | None
        code: str | None
        try:
            profile = profile_for(device.network_driver, device.platform)
            host, port = self._endpoint(device)
            async with self._open(device, profile, host, port, credentials) as session:
                wanted = [("running", profile.running_config_command)]
                if profile.startup_config_command:
                    wanted.append(("startup", profile.startup_config_command))
                for kind, command in wanted:
                    output = await session.run(command)
                    refusal = profile.refused(output)
                    if refusal:
                        raise CommandRefused(f"{command!r} refused: {refusal}")
                    configs[kind] = profile.clean_config(output)
        except (DeviceError, UnsupportedPlatform) as exc:
            error, code = exc.message, exc.code
        except Exception as exc:
            logger.exception(
                "unexpected failure on device %s", device.name, extra={"device_id": device.id}
            )
            error, code = f"unexpected error: {exc}", "internal_error"
        else:
            error = code = None
        return ConfigResult(
            device_id=device.id,
            device_name=device.name,
            host=host,
            port=port,
            platform=device.network_driver or device.platform,
            running=configs["running"],
            startup=configs["startup"],
            error=error,
            error_code=code,
            duration=time.monotonic() - started,
        )

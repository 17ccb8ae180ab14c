"""Host-key policy for device connections, on an OpenSSH ``known_hosts`` file.

Two modes:

- strict (``accept_new=False``): a device must present a key listed for it in the file;
- accept-new (``accept_new=True``, OpenSSH's ``StrictHostKeyChecking=accept-new``): a
  device with no entry is trusted on first contact and its key appended to the file; a
  device whose listed key differs is still rejected.

Entries use OpenSSH's host syntax (``host`` for port 22, ``[host]:port`` otherwise), so
a fleet of lab devices on one loopback address with one port each keeps one entry per
device. The file is read once (:meth:`KnownHosts.load`); new keys are written by
:meth:`KnownHosts.flush` off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncssh

logger = logging.getLogger(__name__)

_SSH_PORT = 22


def host_pattern(host: str, port: int) -> str:
    """The ``known_hosts`` host field for ``host`` on ``port``."""
    return host if port == _SSH_PORT else f"[{host}]:{port}"


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """One ``known_hosts`` line trusting ``key`` for ``host`` on ``port``."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{host_pattern(host, port)} {algorithm} {blob}\n"


class KnownHosts:
    """The trusted host keys and the policy for hosts not yet known."""

    def __init__(self, path: Path, text: str, *, accept_new: bool) -> None:
        self.path = path
        self.accept_new = accept_new
        self._file = asyncssh.import_known_hosts(text)
        self._recorded: dict[tuple[str, int], asyncssh.SSHKey] = {}
        self._pending: list[str] = []
        self._write_lock = asyncio.Lock()

    @classmethod
    async def load(cls, path: Path, *, accept_new: bool = False) -> KnownHosts:
        """Read ``path``; a missing file is an error unless new hosts are accepted."""
        text = await asyncio.to_thread(_read_text, path)
        if text is None and not accept_new:
            raise FileNotFoundError(f"known_hosts file {path} does not exist")
        return cls(path, text or "", accept_new=accept_new)

    def trusted(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """Keys trusted for a host, CA keys, and revoked keys (asyncssh's lookup shape)."""
        port = port or _SSH_PORT
        host_keys, ca_keys, revoked = self._file.match(
            host, addr, None if port == _SSH_PORT else port
        )[:3]
        trusted = list(host_keys)
        recorded = self._recorded.get((host, port))
        if recorded is not None:
            trusted.append(recorded)
        return trusted, list(ca_keys), list(revoked)

    def admit(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Decide on a key that matched no trusted entry when the connection started.

        Called during the handshake. Another connection to the same device may have
        recorded a key since this one looked: the same key is accepted, another refused.
        """
        if not self.accept_new:
            return False
        trusted, ca_keys, _ = self.trusted(host, addr, port)
        # SSHKey compares by identity; the same key from another handshake is another object.
        if any(known.public_data == key.public_data for known in trusted):
            return True
        if trusted or ca_keys:
            logger.warning("host key of %s port %s differs from the recorded one", host, port)
            return False
        self._recorded[(host, port)] = key
        self._pending.append(known_hosts_line(host, port, key))
        logger.info("recorded new host key for %s port %s", host, port)
        return True

    async def flush(self) -> None:
        """Append keys recorded since the last flush to the file."""
        async with self._write_lock:
            if not self._pending:
                return
            lines, self._pending = self._pending, []
            await asyncio.to_thread(_append_text, self.path, "".join(lines))


class HostKeyClient(asyncssh.SSHClient):
    """Routes asyncssh's "unknown key" question to the :class:`KnownHosts` policy."""

    def __init__(self, known_hosts: KnownHosts) -> None:
        self._known_hosts = known_hosts

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._known_hosts.admit(host, addr, port, key)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _append_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(text)

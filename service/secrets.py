"""Encryption of stored secrets under keys of our own (never derived from another secret).

The key file holds every key ever used, by id, and which one encrypts new secrets. Each
ciphertext is stored beside the id of its key, so rotation adds a key, re-encrypts rows
one by one, and readers that meet an id they do not know reload the file — no downtime.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from service.errors import OpsjobsError

logger = logging.getLogger(__name__)


class SecretsError(OpsjobsError):
    code = "secrets_error"


def new_key_id() -> str:
    return f"k{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; ``active`` encrypts, every key decrypts."""

    path: Path
    active: str
    keys: dict[str, bytes]

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> KeyRing:
        """Read the key file; with ``create``, write a fresh one (mode 0600) if missing.

        Blocking file I/O: async callers run it in a thread.
        """
        if not path.exists():
            if not create:
                raise SecretsError(
                    f"secrets key file {path} does not exist; run `opsjobs migrate` to create "
                    "it or set [secrets] key_file"
                )
            key_id = new_key_id()
            ring = cls(path=path, active=key_id, keys={key_id: Fernet.generate_key()})
            ring.save()
            logger.info("created secrets key file %s", path)
            return ring
        try:
            data = json.loads(path.read_text())
            keys = {str(key_id): str(key).encode() for key_id, key in data["keys"].items()}
            active = str(data["active"])
            for key in keys.values():
                Fernet(key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SecretsError(f"secrets key file {path} is unreadable: {exc}") from None
        if active not in keys:
            raise SecretsError(f"secrets key file {path}: active key {active!r} is missing")
        return cls(path=path, active=active, keys=keys)

    def save(self) -> None:
        """Write the key file atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "active": self.active,
            "keys": {key_id: key.decode() for key_id, key in self.keys.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
        os.replace(tmp, self.path)

    def with_new_active_key(self) -> KeyRing:
        key_id = new_key_id()
        return KeyRing(
            path=self.path, active=key_id, keys={**self.keys, key_id: Fernet.generate_key()}
        )

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return self.active, Fernet(self.keys[self.active]).encrypt(plaintext)

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        key = self.keys.get(key_id)
        if key is None:
            raise SecretsError(f"no key {key_id!r} in {self.path}")
        try:
            return Fernet(key).decrypt(ciphertext)
        except InvalidToken:
            raise SecretsError(f"ciphertext does not match key {key_id!r}") from None


class KeyStore:
    """The worker's and API's view of the key file, reloaded when an unknown key id appears."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return self._ring.encrypt(plaintext)

    async def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        if key_id not in self._ring.keys:
            # Rotated since this process started: the file has the new key.
            self._ring = await asyncio.to_thread(KeyRing.load, self._ring.path)
        return self._ring.decrypt(key_id, ciphertext)

    async def reload(self) -> None:
        self._ring = await asyncio.to_thread(KeyRing.load, self._ring.path)

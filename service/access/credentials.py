"""Stored credentials: validation of their secrets, expiry status, decryption in the worker.

Secrets travel only as ids (invariant 7). They are decrypted by ``load_credential`` in the
worker just before use; the API only ever says which secret fields are present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from service.access.keystores import KeystoreError, check_keystore
from service.db.engine import SessionFactory
from service.db.security_models import Credential, CredentialType
from service.errors import InvalidInput, NotFound
from service.secrets import KeyStore

SECRET_FIELDS = ("password", "ssh_key", "passphrase", "token", "keystore")
REQUIRED_SECRETS: dict[CredentialType, tuple[str, ...]] = {
    CredentialType.SSH_PASSWORD: ("password",),
    CredentialType.SSH_KEY: ("ssh_key",),
    CredentialType.TOKEN: ("token",),
    CredentialType.USERNAME_PASSWORD: ("password",),
    # A keystore with its password, or only the password of a keystore file.
    CredentialType.TLS_KEYSTORE: (),
}
ALLOWED_SECRETS: dict[CredentialType, tuple[str, ...]] = {
    CredentialType.SSH_PASSWORD: ("password",),
    CredentialType.SSH_KEY: ("ssh_key", "passphrase"),
    CredentialType.TOKEN: ("token",),
    CredentialType.USERNAME_PASSWORD: ("password",),
    CredentialType.TLS_KEYSTORE: ("keystore", "password"),
}
EXPIRING_WITHIN = timedelta(days=7)


def credential_status(valid_until: date | None, today: date) -> str:
    """``active``, ``expiring`` (within 7 days), ``expired`` or ``unknown`` (no date)."""
    if valid_until is None:
        return "unknown"
    if valid_until < today:
        return "expired"
    if valid_until - today <= EXPIRING_WITHIN:
        return "expiring"
    return "active"


def check_secrets(kind: CredentialType, secrets: Mapping[str, str | None]) -> dict[str, str]:
    """The non-empty secrets of a credential; missing or foreign fields are a 422."""
    present = {name: value for name, value in secrets.items() if value}
    errors = [
        {"loc": ["body", name], "msg": f"not used by a {kind.value} credential"}
        for name in present
        if name not in ALLOWED_SECRETS[kind]
    ] + [
        {"loc": ["body", name], "msg": f"required for a {kind.value} credential"}
        for name in REQUIRED_SECRETS[kind]
        if name not in present
    ]
    if not present and not errors:
        allowed = " or ".join(ALLOWED_SECRETS[kind])
        errors.append({"loc": ["body", ALLOWED_SECRETS[kind][0]], "msg": f"give {allowed}"})
    if not errors and "keystore" in present:
        try:
            check_keystore(present["keystore"], present.get("password"))
        except KeystoreError as exc:
            errors.append({"loc": ["body", "keystore"], "msg": str(exc)})
    if errors:
        raise InvalidInput(f"invalid secrets for a {kind.value} credential", details=errors)
    return present


def seal(keys: KeyStore, secrets: Mapping[str, str]) -> tuple[str, bytes, list[str]]:
    """Encrypt the secrets as one ciphertext: (key id, ciphertext, field names)."""
    key_id, ciphertext = keys.encrypt(json.dumps(dict(secrets), sort_keys=True).encode())
    return key_id, ciphertext, sorted(secrets)


@dataclass(frozen=True)
class DecryptedCredential:
    """A credential ready for use; secrets are kept out of ``repr``."""

    id: int
    name: str
    type: CredentialType
    username: str | None
    password: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    keystore: str | None = field(default=None, repr=False)


async def load_credential(
    sessions: SessionFactory, keys: KeyStore, credential_id: int
) -> DecryptedCredential:
    """Decrypt one active credential (in the worker, just before use)."""
    async with sessions() as session:
        row = await session.scalar(select(Credential).where(Credential.id == credential_id))
    if row is None or not row.is_active:
        raise NotFound(f"credential {credential_id} does not exist or is inactive")
    secrets = json.loads(await keys.decrypt(row.key_id, row.ciphertext))
    return DecryptedCredential(
        id=row.id,
        name=row.name,
        type=CredentialType(row.type),
        username=row.username,
        password=secrets.get("password"),
        ssh_key=secrets.get("ssh_key"),
        passphrase=secrets.get("passphrase"),
        token=secrets.get("token"),
        keystore=secrets.get("keystore"),
    )


async def reencrypt_all(sessions: SessionFactory, keys: KeyStore, batch: int = 200) -> int:
    """Re-encrypt every credential not yet under the active key; returns how many."""
    done = 0
    active = keys.ring.active
    while True:
        async with sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(Credential)
                    .where(Credential.key_id != active)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                plaintext = await keys.decrypt(row.key_id, row.ciphertext)
                row.key_id, row.ciphertext = keys.encrypt(plaintext)
        done += len(rows)
        if len(rows) < batch:
            return done

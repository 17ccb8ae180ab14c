"""Credentials as people create and read them: secrets go in, only their names come out.

The API and the console create credentials here; secrets are sealed at once and a
response says only which secret fields are set. A ``tls_keystore`` credential holds a
keystore or truststore (``keystore``: PEM text, or base64 of a PKCS#12 file) with its
``password``, or only the password of a store file; a keystore must open to be saved.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.credentials import check_secrets, credential_status, seal
from service.access.principals import Principal
from service.db.patching import flush_or_conflict
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict
from service.secrets import KeyStore

Name = Annotated[str, Field(min_length=1, max_length=255)]
Secret = Annotated[str, Field(min_length=1, max_length=65_536)]


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: CredentialType
    username: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    is_global: bool = False
    is_active: bool = True
    valid_until: date | None = None
    password: Secret | None = None
    ssh_key: Secret | None = None
    passphrase: Secret | None = None
    token: Secret | None = None
    keystore: Secret | None = None


class CredentialUpdate(BaseModel):
    """Fields left out keep their value; giving any secret replaces all secrets."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    username: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    is_active: bool | None = None
    valid_until: date | None = None
    password: Secret | None = None
    ssh_key: Secret | None = None
    passphrase: Secret | None = None
    token: Secret | None = None
    keystore: Secret | None = None


class CredentialOut(BaseModel):
    id: int
    name: str
    type: CredentialType
    username: str | None
    description: str | None
    is_global: bool
    owner: str | None
    is_active: bool
    valid_until: date | None
    status: str
    has_password: bool
    has_ssh_key: bool
    has_ssh_passphrase: bool
    has_token: bool
    has_keystore: bool
    key_id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Credential) -> CredentialOut:
        fields = set(row.secret_fields)
        return cls(
            id=row.id,
            name=row.name,
            type=CredentialType(row.type),
            username=row.username,
            description=row.description,
            is_global=row.is_global,
            owner=row.owner,
            is_active=row.is_active,
            valid_until=row.valid_until,
            status=credential_status(row.valid_until, datetime.now(UTC).date()),
            has_password="password" in fields,
            has_ssh_key="ssh_key" in fields,
            has_ssh_passphrase="passphrase" in fields,
            has_token="token" in fields,
            has_keystore="keystore" in fields,
            key_id=row.key_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


SECRET_NAMES = ("password", "ssh_key", "passphrase", "token", "keystore")


def name_taken(name: str) -> Conflict:
    return Conflict(f"a credential named {name!r} already exists in this scope")


async def create_credential(
    session: AsyncSession,
    keys: KeyStore,
    body: CredentialIn,
    *,
    caller: Principal,
    client_ip: str | None,
) -> Credential:
    """Store a credential; its secrets are encrypted at once and never returned."""
    secrets = check_secrets(body.type, {name: getattr(body, name) for name in SECRET_NAMES})
    key_id, ciphertext, fields = seal(keys, secrets)
    row = Credential(
        name=body.name,
        type=body.type.value,
        username=body.username,
        description=body.description,
        is_global=body.is_global,
        owner=caller.username,
        is_active=body.is_active,
        valid_until=body.valid_until,
        key_id=key_id,
        ciphertext=ciphertext,
        secret_fields=fields,
    )
    session.add(row)
    await flush_or_conflict(session, name_taken(body.name))
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="credential",
        resource_id=row.id,
        client_ip=client_ip,
    )
    await session.commit()
    return row

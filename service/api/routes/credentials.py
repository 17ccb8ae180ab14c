"""``/api/credentials``: secrets are write-only; responses say only which ones are set."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from service.access.audit import record_audit
from service.access.credentials import check_secrets, credential_status, seal
from service.access.ownership import get_visible, require_owner, visible_to
from service.api.auth import (
    CredentialsDeleter,
    CredentialsReader,
    CredentialsWriter,
)
from service.api.deps import KeysDep, SessionDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.api.patching import flush_or_conflict, refuse_nulls
from service.db.paging import Page, paginate
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict

router = APIRouter(prefix="/api/credentials", tags=["credentials"])

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
            key_id=row.key_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


SECRET_NAMES = ("password", "ssh_key", "passphrase", "token")


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a credential named {name!r} already exists in this scope")


@router.get("", response_model=Page[CredentialOut])
async def list_credentials(
    caller: CredentialsReader,
    session: SessionDep,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[CredentialOut]:
    return await paginate(
        session,
        Credential,
        where=[visible_to(Credential, caller)],
        order_by=[Credential.name, Credential.id],
        page=page,
        page_size=page_size,
        to_item=CredentialOut.of,
    )


@router.post("", status_code=201, response_model=CredentialOut)
async def create_credential(
    body: CredentialIn,
    caller: CredentialsWriter,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
) -> CredentialOut:
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
    await flush_or_conflict(session, _name_taken(body.name))
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="credential",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    return CredentialOut.of(row)


@router.get("/{credential_id}", response_model=CredentialOut)
async def get_credential(
    credential_id: int, caller: CredentialsReader, session: SessionDep
) -> CredentialOut:
    return CredentialOut.of(
        await get_visible(session, Credential, credential_id, caller, label="credential")
    )


@router.patch("/{credential_id}", response_model=CredentialOut)
async def update_credential(
    credential_id: int,
    body: CredentialUpdate,
    caller: CredentialsWriter,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
) -> CredentialOut:
    row = await get_visible(session, Credential, credential_id, caller, label="credential")
    require_owner(caller, row, label="credential")
    changes = body.model_dump(exclude_unset=True)
    new_secrets = {name: changes.pop(name) for name in SECRET_NAMES if name in changes}
    refuse_nulls(Credential, changes)
    for name, value in changes.items():
        setattr(row, name, value)
    if new_secrets:
        secrets = check_secrets(CredentialType(row.type), new_secrets)
        row.key_id, row.ciphertext, row.secret_fields = seal(keys, secrets)
    await flush_or_conflict(session, _name_taken(row.name))
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="credential",
        resource_id=row.id,
        request=request,
        details={"fields": sorted(changes) + (["secrets"] if new_secrets else [])},
    )
    await session.commit()
    await session.refresh(row)
    return CredentialOut.of(row)


@router.delete("/{credential_id}", status_code=204)
async def delete_credential(
    credential_id: int, caller: CredentialsDeleter, request: Request, session: SessionDep
) -> Response:
    row = await get_visible(session, Credential, credential_id, caller, label="credential")
    require_owner(caller, row, label="credential")
    await session.delete(row)
    try:
        await session.flush()
    except IntegrityError:
        # Rows that use a credential (NiFi instances…) refer to it with ON DELETE RESTRICT.
        raise Conflict(f"credential {credential_id} is in use and cannot be deleted") from None
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="credential",
        resource_id=credential_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)

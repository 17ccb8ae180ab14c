"""``/api/credentials``: secrets are write-only; responses say only which ones are set."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError

from service.access import credential_records
from service.access.audit import record_audit, source_ip
from service.access.credential_records import (
    SECRET_NAMES,
    CredentialIn,
    CredentialOut,
    CredentialUpdate,
    name_taken,
)
from service.access.credentials import check_secrets, seal
from service.access.ownership import get_visible, require_owner, visible_to
from service.api.auth import (
    CredentialsDeleter,
    CredentialsReader,
    CredentialsWriter,
)
from service.api.deps import KeysDep, SessionDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict, refuse_nulls
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict

router = APIRouter(prefix="/api/credentials", tags=["credentials"])


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
    row = await credential_records.create_credential(
        session, keys, body, caller=caller, client_ip=source_ip(request)
    )
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
    await flush_or_conflict(session, name_taken(row.name))
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

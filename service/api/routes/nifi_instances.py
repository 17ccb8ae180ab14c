"""``/api/nifi/instances``: NiFi nodes, how to reach them, and a one-call connection test.

Cluster membership is set through ``/api/nifi/clusters``; here it is read-only. An
instance refers to stored credentials by id only. Whoever gives an instance a credential,
changes where an instance holding credentials connects (:data:`CONNECTION`) or tests it
must be allowed to use its credentials, so nobody can point someone else's private secret
at a server of their choosing.

TLS material: a client identity is PEM files (``client_cert_path``/``client_key_path``,
key passphrase from ``credential_id``) or a keystore; trust is ``ca_bundle`` or a
truststore. A keystore or truststore is a ``tls_keystore`` credential holding the store
and its password, or a file path (PKCS#12 or PEM) whose password such a credential
without a store gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.ownership import authorize
from service.access.resources import ResourceKind, ResourceUse
from service.api.auth import NifiReader, NifiWriter
from service.api.deps import KeysDep, SessionDep, SessionsDep
from service.api.nifi_instance_schemas import (
    NOT_NULL,
    TIMEOUTS,
    InstanceIn,
    InstanceOut,
    InstanceTestOut,
    InstanceUpdate,
)
from service.api.ownership import body_uses, require_redirect_allowed
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.nifi_models import AuthMode, NifiInstanceRow
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict, InvalidInput, NotFound, OpsjobsError
from service.nifi.probe import not_probed, probe_instance
from service.nifi.stored import (
    CREDENTIAL_REQUIRED,
    CREDENTIAL_TYPES,
    CredentialCache,
    StoredInstance,
    build_endpoint,
)

router = APIRouter(prefix="/api/nifi/instances", tags=["nifi"])


def _field_error(field: str, message: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message}


#: Fields that decide where the instance's credentials are sent and how the peer is checked.
CONNECTION = (
    "url",
    "auth_mode",
    "oidc_discovery_url",
    "verify_tls",
    "ca_bundle",
    "check_hostname",
    "client_cert_path",
    "client_key_path",
    "keystore_path",
    "truststore_path",
    "proxy_url",
)


async def _check_auth_settings(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """What the auth mode needs is there and the credentials fit; every problem is a 422
    naming its field. (Whether the caller may use them is asked first.)"""
    mode = AuthMode(values["auth_mode"])
    errors: list[dict[str, Any]] = []
    credential_id = values.get("credential_id")
    if mode in CREDENTIAL_REQUIRED and credential_id is None:
        errors.append(_field_error("credential_id", f"required for auth mode {mode.value}"))
    if mode is AuthMode.NONE and credential_id is not None:
        errors.append(_field_error("credential_id", "not used by auth mode none"))
    if mode is AuthMode.OIDC_CLIENT_CREDENTIALS and not values.get("oidc_discovery_url"):
        errors.append(_field_error("oidc_discovery_url", "required for oidc_client_credentials"))
    errors += await _store_errors(session, values)
    identity = [name for name in IDENTITIES if values.get(name) is not None]
    if mode is AuthMode.CLIENT_CERTIFICATE and not identity:
        errors.append(
            _field_error(
                "client_cert_path",
                "client_certificate needs client_cert_path, keystore_path or "
                "keystore_credential_id",
            )
        )
    if values.get("client_cert_path") and len(identity) > 1:
        errors.append(_field_error("client_cert_path", "give PEM files or a keystore, not both"))
    if credential_id is not None and mode is not AuthMode.NONE:
        credential = await session.get(Credential, credential_id)
        if credential is None:
            errors.append(_field_error("credential_id", f"credential {credential_id} not found"))
        elif CredentialType(credential.type) not in CREDENTIAL_TYPES[mode]:
            allowed = ", ".join(kind.value for kind in CREDENTIAL_TYPES[mode])
            errors.append(
                _field_error(
                    "credential_id", f"auth mode {mode.value} takes a {allowed} credential"
                )
            )
    if errors:
        raise InvalidInput(f"invalid settings for auth mode {mode.value}", details=errors)


IDENTITIES = ("client_cert_path", "keystore_path", "keystore_credential_id")
# (path field, credential field) of each store.
STORES = (
    ("keystore_path", "keystore_credential_id"),
    ("truststore_path", "truststore_credential_id"),
)


async def _store_errors(session: AsyncSession, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A store credential is a tls_keystore credential; one holding a store
    excludes a path, one holding only a password needs the path it opens."""
    errors = []
    for path_field, credential_field in STORES:
        credential_id = values.get(credential_field)
        if credential_id is None:
            continue
        credential = await session.get(Credential, credential_id)
        if credential is None:
            errors.append(_field_error(credential_field, f"credential {credential_id} not found"))
        elif CredentialType(credential.type) is not CredentialType.TLS_KEYSTORE:
            errors.append(_field_error(credential_field, "takes a tls_keystore credential"))
        elif "keystore" in credential.secret_fields and values.get(path_field):
            errors.append(
                _field_error(path_field, f"the credential {credential_field} holds the store")
            )
        elif "keystore" not in credential.secret_fields and not values.get(path_field):
            errors.append(
                _field_error(
                    path_field, f"required: the credential {credential_field} holds a password"
                )
            )
    return errors


def _values_of(row: NifiInstanceRow) -> dict[str, Any]:
    return {column: getattr(row, column) for column in InstanceIn.model_fields}


async def _get(session: AsyncSession, instance_id: int) -> NifiInstanceRow:
    row = await session.get(NifiInstanceRow, instance_id)
    if row is None:
        raise NotFound(f"NiFi instance {instance_id} does not exist")
    return row


async def _flush(session: AsyncSession, name: str) -> None:
    await flush_or_conflict(session, Conflict(f"a NiFi instance named {name!r} already exists"))


@router.get("", response_model=Page[InstanceOut])
async def list_instances(
    caller: NifiReader,
    session: SessionDep,
    cluster_id: Annotated[int | None, Query(description="only this cluster's members")] = None,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> Page[InstanceOut]:
    """Instances by name; ``cluster_id`` keeps one cluster's members."""
    where = [] if cluster_id is None else [NifiInstanceRow.cluster_id == cluster_id]
    return await paginate(
        session,
        NifiInstanceRow,
        where=where,
        order_by=(NifiInstanceRow.name, NifiInstanceRow.id),
        page=page,
        page_size=page_size,
        to_item=InstanceOut.model_validate,
    )


@router.post("", status_code=201, response_model=InstanceOut)
async def create_instance(
    body: InstanceIn, caller: NifiWriter, request: Request, session: SessionDep
) -> InstanceOut:
    values = body.model_dump()
    await authorize(session, caller, body_uses(body))
    await _check_auth_settings(session, values)
    values["auth_mode"] = body.auth_mode.value
    row = NifiInstanceRow(**values)
    session.add(row)
    await _flush(session, body.name)
    record_audit(
        session,
        actor=caller.username,
        action="create",
        resource_type="nifi_instance",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    await session.refresh(row)
    return InstanceOut.model_validate(row)


@router.get("/{instance_id}", response_model=InstanceOut)
async def get_instance(instance_id: int, caller: NifiReader, session: SessionDep) -> InstanceOut:
    return InstanceOut.model_validate(await _get(session, instance_id))


@router.patch("/{instance_id}", response_model=InstanceOut)
async def update_instance(
    instance_id: int,
    body: InstanceUpdate,
    caller: NifiWriter,
    request: Request,
    session: SessionDep,
) -> InstanceOut:
    row = await _get(session, instance_id)
    changes = body.model_dump(exclude_unset=True)
    refused = [name for name in (*NOT_NULL, *TIMEOUTS) if name in changes and changes[name] is None]
    if refused:
        raise InvalidInput(
            "these fields cannot be null",
            details=[_field_error(name, "may not be null") for name in refused],
        )
    await authorize(session, caller, body_uses(body, changes))
    await require_redirect_allowed(
        session, caller, ResourceKind.NIFI_INSTANCE, row.id, changes, CONNECTION
    )
    merged = {**_values_of(row), **changes}
    await _check_auth_settings(session, merged)
    for name, value in changes.items():
        setattr(row, name, value.value if isinstance(value, AuthMode) else value)
    await _flush(session, row.name)
    record_audit(
        session,
        actor=caller.username,
        action="update",
        resource_type="nifi_instance",
        resource_id=row.id,
        request=request,
        details={"fields": sorted(changes)},
    )
    await session.commit()
    await session.refresh(row)
    return InstanceOut.model_validate(row)


@router.delete("/{instance_id}", status_code=204)
async def delete_instance(
    instance_id: int, caller: NifiWriter, request: Request, session: SessionDep
) -> Response:
    row = await _get(session, instance_id)
    if row.is_primary and row.cluster_id is not None:
        others = await session.scalar(
            select(func.count()).where(
                NifiInstanceRow.cluster_id == row.cluster_id, NifiInstanceRow.id != row.id
            )
        )
        if others:
            raise Conflict(
                f"NiFi instance {row.name!r} is the primary of cluster {row.cluster_id}; "
                "make another member primary first"
            )
    await session.delete(row)
    record_audit(
        session,
        actor=caller.username,
        action="delete",
        resource_type="nifi_instance",
        resource_id=instance_id,
        request=request,
    )
    await session.commit()
    return Response(status_code=204)


@router.post("/{instance_id}/test", response_model=InstanceTestOut)
async def test_instance(
    instance_id: int,
    caller: NifiWriter,
    request: Request,
    session: SessionDep,
    sessions: SessionsDep,
    keys: KeysDep,
) -> InstanceTestOut:
    """Reachability, NiFi version (``flow/about``) and the auth result in one call.

    The credentials are decrypted here for this check only and never returned; testing
    needs being allowed to use them (403 otherwise)."""
    row = await _get(session, instance_id)
    await authorize(
        session, caller, [ResourceUse(ResourceKind.NIFI_INSTANCE, row.id, ("path", "instance_id"))]
    )
    instance = StoredInstance.of(row)
    record_audit(
        session,
        actor=caller.username,
        action="test",
        resource_type="nifi_instance",
        resource_id=row.id,
        request=request,
    )
    await session.commit()
    try:
        endpoint = await build_endpoint(instance, CredentialCache(sessions, keys))
    except OpsjobsError as exc:
        report = not_probed(instance.auth_mode, exc.message)
    else:
        report = await probe_instance(endpoint)
    data = report.to_dict()
    return InstanceTestOut(instance_id=instance.id, name=instance.name, url=instance.url, **data)

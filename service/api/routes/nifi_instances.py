"""``/api/nifi/instances``: NiFi nodes, how to reach them, and a one-call connection test.

Cluster membership is set through ``/api/nifi/clusters``; here it is read-only. An
instance refers to a stored credential by id only; whoever saves an instance with a
credential must be able to see that credential, so nobody can point someone else's
private secret at a server of their choosing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.audit import record_audit
from service.access.principals import Principal
from service.api.auth import NifiReader, NifiWriter
from service.api.deps import KeysDep, SessionDep, SessionsDep
from service.api.pagination import PageQuery, PageSizeQuery
from service.db.nifi_models import AuthMode, NifiInstanceRow
from service.db.paging import Page, paginate
from service.db.patching import flush_or_conflict
from service.db.security_models import Credential, CredentialType
from service.errors import Conflict, InvalidInput, NotFound, OpsjobsError
from service.nifi.endpoints import normalize_api_url
from service.nifi.probe import not_probed, probe_instance
from service.nifi.stored import (
    CREDENTIAL_REQUIRED,
    CREDENTIAL_TYPES,
    CredentialCache,
    StoredInstance,
    build_endpoint,
)

router = APIRouter(prefix="/api/nifi/instances", tags=["nifi"])

Name = Annotated[str, Field(min_length=1, max_length=255)]
FilePath = Annotated[str, Field(min_length=1, max_length=1024)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
ConnectTimeout = Annotated[float, Field(gt=0, le=300)]
ReadTimeout = Annotated[float, Field(gt=0, le=3600)]


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.strip().startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.strip() if value is not None else None


class _InstanceFields(BaseModel):
    @field_validator("url", check_fields=False)
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_api_url(value)

    @field_validator("oidc_discovery_url", check_fields=False)
    @classmethod
    def _discovery_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class InstanceIn(_InstanceFields):
    model_config = ConfigDict(extra="forbid")

    name: Name
    url: Url
    auth_mode: AuthMode = AuthMode.NONE
    credential_id: int | None = None
    client_cert_path: FilePath | None = None
    client_key_path: FilePath | None = None
    oidc_discovery_url: Url | None = None
    verify_tls: bool = True
    ca_bundle: FilePath | None = None
    check_hostname: bool = True
    connect_timeout: ConnectTimeout = 5.0
    read_timeout: ReadTimeout = 30.0
    description: str | None = Field(default=None, max_length=10_000)


class InstanceUpdate(_InstanceFields):
    """Fields left out keep their value; ``null`` clears a nullable one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    url: Url | None = None
    auth_mode: AuthMode | None = None
    credential_id: int | None = None
    client_cert_path: FilePath | None = None
    client_key_path: FilePath | None = None
    oidc_discovery_url: Url | None = None
    verify_tls: bool | None = None
    ca_bundle: FilePath | None = None
    check_hostname: bool | None = None
    connect_timeout: ConnectTimeout | None = None
    read_timeout: ReadTimeout | None = None
    description: str | None = Field(default=None, max_length=10_000)


NOT_NULL = ("name", "url", "auth_mode", "verify_tls", "check_hostname")
TIMEOUTS = ("connect_timeout", "read_timeout")


class InstanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str
    auth_mode: AuthMode
    credential_id: int | None
    client_cert_path: str | None
    client_key_path: str | None
    oidc_discovery_url: str | None
    verify_tls: bool
    ca_bundle: str | None
    check_hostname: bool
    connect_timeout: float
    read_timeout: float
    description: str | None
    cluster_id: int | None
    is_primary: bool
    created_at: datetime
    updated_at: datetime


class AuthProbeOut(BaseModel):
    mode: AuthMode
    ok: bool | None


class InstanceTestOut(BaseModel):
    instance_id: int
    name: str
    url: str
    ok: bool
    reachable: bool | None
    version: str | None
    title: str | None
    auth: AuthProbeOut
    error: str | None
    elapsed_ms: float


def _field_error(field: str, message: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message}


async def _check_auth_settings(
    session: AsyncSession, caller: Principal, values: Mapping[str, Any]
) -> None:
    """What the auth mode needs is there, and the credential fits and is the caller's
    to use; every problem is a 422 naming its field."""
    mode = AuthMode(values["auth_mode"])
    errors: list[dict[str, Any]] = []
    credential_id = values.get("credential_id")
    if mode in CREDENTIAL_REQUIRED and credential_id is None:
        errors.append(_field_error("credential_id", f"required for auth mode {mode.value}"))
    if mode is AuthMode.NONE and credential_id is not None:
        errors.append(_field_error("credential_id", "not used by auth mode none"))
    if mode is AuthMode.OIDC_CLIENT_CREDENTIALS and not values.get("oidc_discovery_url"):
        errors.append(_field_error("oidc_discovery_url", "required for oidc_client_credentials"))
    if mode is AuthMode.CLIENT_CERTIFICATE and not values.get("client_cert_path"):
        errors.append(_field_error("client_cert_path", "required for client_certificate"))
    if credential_id is not None and mode is not AuthMode.NONE:
        credential = await session.get(Credential, credential_id)
        if credential is None or not caller.may_see(credential.is_global, credential.owner):
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
    await _check_auth_settings(session, caller, values)
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
    merged = {**_values_of(row), **changes}
    await _check_auth_settings(session, caller, merged)
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

    The credential is decrypted here for this check only and never returned."""
    row = await _get(session, instance_id)
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

"""Request and response bodies of ``/api/nifi/instances``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.access.resources import ResourceKind, ResourceRef
from service.db.nifi_models import AuthMode
from service.nifi.endpoints import normalize_api_url

Name = Annotated[str, Field(min_length=1, max_length=255)]
FilePath = Annotated[str, Field(min_length=1, max_length=1024)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Scope = Annotated[str, Field(min_length=1, max_length=1024)]
ConnectTimeout = Annotated[float, Field(gt=0, le=300)]
ReadTimeout = Annotated[float, Field(gt=0, le=3600)]


def http_url(value: str | None) -> str | None:
    if value is not None and not value.strip().startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.strip() if value is not None else None


def _proxy_url(value: str | None) -> str | None:
    value = http_url(value)
    if value is not None:
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError("names no host")
        if parts.username is not None or parts.password is not None:
            # The column is not encrypted: a proxy password in it would be a secret at rest.
            raise ValueError("must not carry a user name or password")
    return value


class _InstanceFields(BaseModel):
    @field_validator("url", check_fields=False)
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_api_url(value)

    @field_validator("oidc_discovery_url", check_fields=False)
    @classmethod
    def _discovery_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("proxy_url", check_fields=False)
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        return _proxy_url(value)


class InstanceIn(_InstanceFields):
    model_config = ConfigDict(extra="forbid")

    name: Name
    url: Url
    auth_mode: AuthMode = AuthMode.NONE
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    client_cert_path: FilePath | None = None
    client_key_path: FilePath | None = None
    oidc_discovery_url: Url | None = None
    oidc_scope: Scope | None = None
    oidc_audience: Scope | None = None
    verify_tls: bool = True
    ca_bundle: FilePath | None = None
    keystore_path: FilePath | None = None
    keystore_credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    truststore_path: FilePath | None = None
    truststore_credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    check_hostname: bool = True
    proxy_url: Url | None = None
    connect_timeout: ConnectTimeout = 5.0
    read_timeout: ReadTimeout = 30.0
    description: str | None = Field(default=None, max_length=10_000)


class InstanceUpdate(_InstanceFields):
    """Fields left out keep their value; ``null`` clears a nullable one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    url: Url | None = None
    auth_mode: AuthMode | None = None
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    client_cert_path: FilePath | None = None
    client_key_path: FilePath | None = None
    oidc_discovery_url: Url | None = None
    oidc_scope: Scope | None = None
    oidc_audience: Scope | None = None
    verify_tls: bool | None = None
    ca_bundle: FilePath | None = None
    keystore_path: FilePath | None = None
    keystore_credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    truststore_path: FilePath | None = None
    truststore_credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    check_hostname: bool | None = None
    proxy_url: Url | None = None
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
    oidc_scope: str | None
    oidc_audience: str | None
    verify_tls: bool
    ca_bundle: str | None
    keystore_path: str | None
    keystore_credential_id: int | None
    truststore_path: str | None
    truststore_credential_id: int | None
    check_hostname: bool
    proxy_url: str | None
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

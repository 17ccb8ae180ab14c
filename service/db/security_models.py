"""ORM models of the security layer: API tokens, encrypted credentials, the audit trail."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base, sql_values


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class CredentialType(enum.StrEnum):
    SSH_PASSWORD = "ssh_password"
    SSH_KEY = "ssh_key"
    TOKEN = "token"
    USERNAME_PASSWORD = "username_password"
    # A PKCS#12 or PEM keystore/truststore (``keystore``) and the password opening it.
    TLS_KEYSTORE = "tls_keystore"


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(f"role IN ({sql_values(Role)})", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Credential(Base):
    """A credential whose secrets are one ciphertext, encrypted under the key ``key_id``."""

    __tablename__ = "credentials"
    __table_args__ = (
        CheckConstraint(f"type IN ({sql_values(CredentialType)})", name="type"),
        Index(
            "uq_credentials_global_name", "name", unique=True, postgresql_where=text("is_global")
        ),
        Index(
            "uq_credentials_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    valid_until: Mapped[date | None] = mapped_column(Date)
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Names of the secret fields present (never their values), for has_password & co.
    secret_fields: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class AuditEvent(Base):
    """Who did what to which resource, when and from where."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", text("at DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str | None] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


#: How long the first answer to a request with an ``Idempotency-Key`` is replayed.
IDEMPOTENCY_WINDOW = timedelta(hours=24)


class IdempotencyKey(Base):
    """The first answer to a run-creating request sent with an ``Idempotency-Key`` header.

    Keyed by who asked (``principal``: a token, or a console user) and the key; the row is
    written before the run is created (``status_code`` NULL while that request is under
    way), so the primary key lets one of two concurrent requests through. Retention drops
    rows older than the replay window.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, path, query and body: the same key with another request is
    # refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column()
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

"""ORM models of the NiFi inventory: clusters and the instances (nodes) that form them.

An instance belongs to at most one cluster (one ``cluster_id`` column). Each cluster with
members has exactly one primary: a partial unique index allows at most one, and a
deferred constraint trigger (migration 0003) refuses a commit that leaves none.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base


class AuthMode(StrEnum):
    """How opsjobs authenticates to a NiFi instance."""

    USERNAME_PASSWORD = "username_password"
    CLIENT_CERTIFICATE = "client_certificate"
    OIDC_CLIENT_CREDENTIALS = "oidc_client_credentials"
    NONE = "none"


PRIMARY_INDEX = "uq_nifi_instances_cluster_primary"
ONE_PRIMARY_TRIGGER = "nifi_cluster_one_primary"


def _auth_modes() -> str:
    return ", ".join(f"'{mode.value}'" for mode in AuthMode)


class NifiClusterRow(Base):
    """A NiFi cluster as operators label it; members are the instances pointing at it."""

    __tablename__ = "nifi_clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    hierarchy_attribute: Mapped[str | None] = mapped_column(String(255))
    hierarchy_value: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class NifiInstanceRow(Base):
    """One NiFi node: where it is, how to authenticate, which cluster it belongs to."""

    __tablename__ = "nifi_instances"
    __table_args__ = (
        CheckConstraint(f"auth_mode IN ({_auth_modes()})", name="auth_mode"),
        CheckConstraint("connect_timeout > 0 AND read_timeout > 0", name="timeouts_positive"),
        Index(PRIMARY_INDEX, "cluster_id", unique=True, postgresql_where=text("is_primary")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    auth_mode: Mapped[str] = mapped_column(String(32))
    # RESTRICT: a credential in use cannot vanish from under an instance.
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT"), index=True
    )
    client_cert_path: Mapped[str | None] = mapped_column(String(1024))
    client_key_path: Mapped[str | None] = mapped_column(String(1024))
    oidc_discovery_url: Mapped[str | None] = mapped_column(String(2048))
    oidc_scope: Mapped[str | None] = mapped_column(String(1024))
    oidc_audience: Mapped[str | None] = mapped_column(String(1024))
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    ca_bundle: Mapped[str | None] = mapped_column(String(1024))
    # A keystore (client identity) or truststore is a file on every worker host or a
    # stored tls_keystore credential; a credential without content gives a file's password.
    keystore_path: Mapped[str | None] = mapped_column(String(1024))
    keystore_credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT"), index=True
    )
    truststore_path: Mapped[str | None] = mapped_column(String(1024))
    truststore_credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT"), index=True
    )
    proxy_url: Mapped[str | None] = mapped_column(String(2048))
    check_hostname: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    connect_timeout: Mapped[float] = mapped_column(Float, default=5.0, server_default="5")
    read_timeout: Mapped[float] = mapped_column(Float, default=30.0, server_default="30")
    description: Mapped[str | None] = mapped_column(Text)
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("nifi_clusters.id", ondelete="SET NULL"), index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class NifiBulletinCursor(Base):
    """The last bulletin a schedule's ``check_bulletins`` saw on a cluster, per node
    (each NiFi node numbers its bulletins itself), so the next run reports only newer
    ones. The row is locked while a run advances it. Goes with its schedule or cluster."""

    __tablename__ = "nifi_bulletin_cursors"

    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("job_schedules.id", ondelete="CASCADE"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("nifi_clusters.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # NiFi node address ("" for a standalone instance) → the highest bulletin id seen.
    last_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

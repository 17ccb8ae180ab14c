"""ORM models of the device side: saved inventories, command templates (versioned), git
repositories for backups, and the index of where each device's backups live.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base


class Inventory(Base):
    """A saved condition tree (version 2), validated when it is saved."""

    __tablename__ = "inventories"
    __table_args__ = (
        Index(
            "uq_inventories_global_name", "name", unique=True, postgresql_where=text("is_global")
        ),
        Index(
            "uq_inventories_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    # The root of the tree with the origin's key names ({"type": "root", "internalLogic"…}).
    tree: Mapped[dict[str, Any]] = mapped_column()
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CommandTemplate(Base):
    """A Jinja2 command template; ``version`` is the current one, all are kept in versions."""

    __tablename__ = "command_templates"
    __table_args__ = (
        Index(
            "uq_command_templates_global_name",
            "name",
            unique=True,
            postgresql_where=text("is_global"),
        ),
        Index(
            "uq_command_templates_owner_name",
            "owner",
            "name",
            unique=True,
            postgresql_where=text("NOT is_global"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    is_global: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CommandTemplateVersion(Base):
    """Every content a command template has had, the current one included."""

    __tablename__ = "command_template_versions"
    __table_args__ = (
        UniqueConstraint("template_id", "version", name="uq_command_template_versions_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("command_templates.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    change_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class GitRepository(Base):
    """Where backups are committed: a checkout under the git root and an optional remote."""

    __tablename__ = "git_repositories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    # Relative to the configured checkout root; NULL means "repo-<id>".
    local_path: Mapped[str | None] = mapped_column(String(1024), unique=True)
    branch: Mapped[str] = mapped_column(String(255), default="main", server_default="main")
    # RESTRICT: a credential in use by a repository cannot disappear underneath it.
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT"), index=True
    )
    author_name: Mapped[str] = mapped_column(
        String(255), default="opsjobs", server_default="opsjobs"
    )
    author_email: Mapped[str] = mapped_column(
        String(255), default="opsjobs@localhost", server_default="opsjobs@localhost"
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class DeviceBackupFile(Base):
    """Which file of which repository holds a device's running or startup configuration."""

    __tablename__ = "device_backup_files"
    __table_args__ = (
        UniqueConstraint(
            "device_id", "repository_id", "kind", name="uq_device_backup_files_device_repo_kind"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    device_name: Mapped[str] = mapped_column(String(255))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("git_repositories.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    last_commit: Mapped[str | None] = mapped_column(String(64))
    last_run_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

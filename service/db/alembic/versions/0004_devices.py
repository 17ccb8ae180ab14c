"""devices: inventories, command templates, git repositories, device backup files

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-28 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def _scoped_name_indexes(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_owner"), table, ["owner"], unique=False)
    op.create_index(
        f"uq_{table}_global_name",
        table,
        ["name"],
        unique=True,
        postgresql_where=sa.text("is_global"),
    )
    op.create_index(
        f"uq_{table}_owner_name",
        table,
        ["owner", "name"],
        unique=True,
        postgresql_where=sa.text("NOT is_global"),
    )


def upgrade() -> None:
    op.create_table(
        "inventories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tree", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventories")),
    )
    _scoped_name_indexes("inventories")
    op.create_table(
        "command_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_templates")),
    )
    _scoped_name_indexes("command_templates")
    op.create_table(
        "command_template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["command_templates.id"],
            name=op.f("fk_command_template_versions_template_id_command_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_template_versions")),
        sa.UniqueConstraint("template_id", "version", name="uq_command_template_versions_version"),
    )
    op.create_table(
        "git_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("local_path", sa.String(length=1024), nullable=True),
        sa.Column("branch", sa.String(length=255), server_default="main", nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=255), server_default="opsjobs", nullable=False),
        sa.Column(
            "author_email",
            sa.String(length=255),
            server_default="opsjobs@localhost",
            nullable=False,
        ),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_git_repositories_credential_id_credentials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_git_repositories")),
        sa.UniqueConstraint("local_path", name=op.f("uq_git_repositories_local_path")),
        sa.UniqueConstraint("name", name=op.f("uq_git_repositories_name")),
    )
    op.create_index(
        op.f("ix_git_repositories_credential_id"),
        "git_repositories",
        ["credential_id"],
        unique=False,
    )
    op.create_table(
        "device_backup_files",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("device_name", sa.String(length=255), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("last_commit", sa.String(length=64), nullable=True),
        sa.Column("last_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["git_repositories.id"],
            name=op.f("fk_device_backup_files_repository_id_git_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_backup_files")),
        sa.UniqueConstraint(
            "device_id", "repository_id", "kind", name="uq_device_backup_files_device_repo_kind"
        ),
    )
    op.create_index(
        op.f("ix_device_backup_files_device_id"), "device_backup_files", ["device_id"], unique=False
    )
    op.create_index(
        op.f("ix_device_backup_files_repository_id"),
        "device_backup_files",
        ["repository_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("device_backup_files")
    op.drop_table("git_repositories")
    op.drop_table("command_template_versions")
    op.drop_table("command_templates")
    op.drop_table("inventories")

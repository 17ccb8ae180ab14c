"""NiFi as clusters behave: TLS stores, OIDC scope/audience, proxies, bulletin cursors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00.000000

Instances gain a keystore and a truststore (a file path or a stored ``tls_keystore``
credential), ``oidc_scope``/``oidc_audience`` and ``proxy_url``; ``check_bulletins``
remembers per schedule and cluster the last bulletin id of each node.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_TYPES = "type IN ('ssh_password', 'ssh_key', 'token', 'username_password')"
NEW_TYPES = "type IN ('ssh_password', 'ssh_key', 'token', 'username_password', 'tls_keystore')"
STORE_CREDENTIALS = ("keystore_credential_id", "truststore_credential_id")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_credentials_type"), "credentials", type_="check")
    op.create_check_constraint(op.f("ck_credentials_type"), "credentials", NEW_TYPES)
    for name, length in (
        ("oidc_scope", 1024),
        ("oidc_audience", 1024),
        ("keystore_path", 1024),
        ("truststore_path", 1024),
        ("proxy_url", 2048),
    ):
        op.add_column("nifi_instances", sa.Column(name, sa.String(length=length), nullable=True))
    for name in STORE_CREDENTIALS:
        op.add_column("nifi_instances", sa.Column(name, sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_nifi_instances_{name}_credentials"),
            "nifi_instances",
            "credentials",
            [name],
            ["id"],
            ondelete="RESTRICT",
        )
        op.create_index(op.f(f"ix_nifi_instances_{name}"), "nifi_instances", [name])
    op.create_table(
        "nifi_bulletin_cursors",
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("last_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["nifi_clusters.id"],
            name=op.f("fk_nifi_bulletin_cursors_cluster_id_nifi_clusters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["job_schedules.id"],
            name=op.f("fk_nifi_bulletin_cursors_schedule_id_job_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "cluster_id", name=op.f("pk_nifi_bulletin_cursors")),
    )
    op.create_index(
        op.f("ix_nifi_bulletin_cursors_cluster_id"), "nifi_bulletin_cursors", ["cluster_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_nifi_bulletin_cursors_cluster_id"), table_name="nifi_bulletin_cursors")
    op.drop_table("nifi_bulletin_cursors")
    for name in STORE_CREDENTIALS:
        op.drop_index(op.f(f"ix_nifi_instances_{name}"), table_name="nifi_instances")
        op.drop_constraint(
            op.f(f"fk_nifi_instances_{name}_credentials"), "nifi_instances", type_="foreignkey"
        )
        op.drop_column("nifi_instances", name)
    for name in ("oidc_scope", "oidc_audience", "keystore_path", "truststore_path", "proxy_url"):
        op.drop_column("nifi_instances", name)
    op.execute("DELETE FROM credentials WHERE type = 'tls_keystore'")
    op.drop_constraint(op.f("ck_credentials_type"), "credentials", type_="check")
    op.create_check_constraint(op.f("ck_credentials_type"), "credentials", OLD_TYPES)

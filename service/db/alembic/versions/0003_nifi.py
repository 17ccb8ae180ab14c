"""nifi clusters and instances

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Deferred to commit, so a transaction may move the primary from one member to another;
# the partial unique index keeps it to at most one at every statement.
ONE_PRIMARY_FUNCTION = """
CREATE FUNCTION nifi_cluster_has_one_primary() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cluster integer;
    members integer;
    primaries integer;
BEGIN
    FOREACH cluster IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.cluster_id END,
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.cluster_id END
    ] LOOP
        CONTINUE WHEN cluster IS NULL;
        SELECT count(*), count(*) FILTER (WHERE is_primary) INTO members, primaries
        FROM nifi_instances WHERE cluster_id = cluster;
        IF members > 0 AND primaries <> 1 THEN
            RAISE EXCEPTION 'NiFi cluster % needs exactly one primary instance, has %',
                cluster, primaries
                USING ERRCODE = 'integrity_constraint_violation',
                      CONSTRAINT = 'nifi_cluster_one_primary';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$
"""
ONE_PRIMARY_TRIGGER = """
CREATE CONSTRAINT TRIGGER nifi_cluster_one_primary
AFTER INSERT OR DELETE OR UPDATE OF cluster_id, is_primary ON nifi_instances
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION nifi_cluster_has_one_primary()
"""


def upgrade() -> None:
    op.create_table(
        "nifi_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("hierarchy_attribute", sa.String(length=255), nullable=True),
        sa.Column("hierarchy_value", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nifi_clusters")),
        sa.UniqueConstraint("name", name=op.f("uq_nifi_clusters_name")),
    )
    op.create_table(
        "nifi_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("auth_mode", sa.String(length=32), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("client_cert_path", sa.String(length=1024), nullable=True),
        sa.Column("client_key_path", sa.String(length=1024), nullable=True),
        sa.Column("oidc_discovery_url", sa.String(length=2048), nullable=True),
        sa.Column("verify_tls", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("ca_bundle", sa.String(length=1024), nullable=True),
        sa.Column("check_hostname", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("connect_timeout", sa.Float(), server_default="5", nullable=False),
        sa.Column("read_timeout", sa.Float(), server_default="30", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("cluster_id", sa.Integer(), nullable=True),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
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
        sa.CheckConstraint(
            "auth_mode IN ('username_password', 'client_certificate', "
            "'oidc_client_credentials', 'none')",
            name=op.f("ck_nifi_instances_auth_mode"),
        ),
        sa.CheckConstraint(
            "connect_timeout > 0 AND read_timeout > 0",
            name=op.f("ck_nifi_instances_timeouts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["nifi_clusters.id"],
            name=op.f("fk_nifi_instances_cluster_id_nifi_clusters"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_nifi_instances_credential_id_credentials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nifi_instances")),
        sa.UniqueConstraint("name", name=op.f("uq_nifi_instances_name")),
    )
    op.create_index(
        op.f("ix_nifi_instances_cluster_id"), "nifi_instances", ["cluster_id"], unique=False
    )
    op.create_index(
        op.f("ix_nifi_instances_credential_id"), "nifi_instances", ["credential_id"], unique=False
    )
    op.create_index(
        "uq_nifi_instances_cluster_primary",
        "nifi_instances",
        ["cluster_id"],
        unique=True,
        postgresql_where=sa.text("is_primary"),
    )
    op.execute(ONE_PRIMARY_FUNCTION)
    op.execute(ONE_PRIMARY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER nifi_cluster_one_primary ON nifi_instances")
    op.execute("DROP FUNCTION nifi_cluster_has_one_primary()")
    op.drop_index(
        "uq_nifi_instances_cluster_primary",
        table_name="nifi_instances",
        postgresql_where=sa.text("is_primary"),
    )
    op.drop_index(op.f("ix_nifi_instances_credential_id"), table_name="nifi_instances")
    op.drop_index(op.f("ix_nifi_instances_cluster_id"), table_name="nifi_instances")
    op.drop_table("nifi_instances")
    op.drop_table("nifi_clusters")

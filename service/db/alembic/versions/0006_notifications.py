"""notifications, schedule health, maintenance windows, template concurrency

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:00:00.000000

Channels, rules, the run-fact outbox, events, deliveries and their attempts, alert states,
maintenance windows; schedule health columns; templates' ``max_concurrent_runs``; and a
``skipped`` target status (a device in a maintenance window).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TARGET_STATUSES = "'pending', 'running', 'succeeded', 'failed', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_alert_states")),
    )
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
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
            "type IN ('webhook', 'slack', 'email')", name=op.f("ck_notification_channels_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
    )
    op.create_index(
        op.f("ix_notification_channels_owner"), "notification_channels", ["owner"], unique=False
    )
    op.create_index(
        "uq_notification_channels_global_name",
        "notification_channels",
        ["name"],
        unique=True,
        postgresql_where=sa.text("is_global"),
    )
    op.create_index(
        "uq_notification_channels_owner_name",
        "notification_channels",
        ["owner", "name"],
        unique=True,
        postgresql_where=sa.text("NOT is_global"),
    )
    op.create_table(
        "notification_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("job_type", sa.String(length=64), nullable=True),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("routed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_events")),
        sa.UniqueConstraint("event", "dedup_key", name="uq_notification_events_dedup"),
    )
    op.create_index(
        "ix_notification_events_unrouted",
        "notification_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("NOT routed"),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("processed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        "ix_notification_outbox_unprocessed",
        "notification_outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("NOT processed"),
    )
    op.create_table(
        "notification_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("channel_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("job_types", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("template_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("schedule_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_rules")),
    )
    op.create_index(
        op.f("ix_notification_rules_owner"), "notification_rules", ["owner"], unique=False
    )
    op.create_index(
        "uq_notification_rules_global_name",
        "notification_rules",
        ["name"],
        unique=True,
        postgresql_where=sa.text("is_global"),
    )
    op.create_index(
        "uq_notification_rules_owner_name",
        "notification_rules",
        ["owner", "name"],
        unique=True,
        postgresql_where=sa.text("NOT is_global"),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cron_expression", sa.String(length=255), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("template_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("schedule_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("job_types", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("inventory_id", sa.Integer(), nullable=True),
        sa.Column("is_global", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
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
            "(start_at IS NOT NULL AND end_at IS NOT NULL AND cron_expression IS NULL)"
            " OR (cron_expression IS NOT NULL AND duration_minutes IS NOT NULL"
            " AND start_at IS NULL AND end_at IS NULL)",
            name=op.f("ck_maintenance_windows_one_off_or_recurring"),
        ),
        sa.ForeignKeyConstraint(
            ["inventory_id"],
            ["inventories.id"],
            name=op.f("fk_maintenance_windows_inventory_id_inventories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index(
        op.f("ix_maintenance_windows_owner"), "maintenance_windows", ["owner"], unique=False
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'delivered', 'failed')",
            name=op.f("ck_notification_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_notification_deliveries_channel_id_notification_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["notification_events.id"],
            name=op.f("fk_notification_deliveries_event_id_notification_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["notification_rules.id"],
            name=op.f("fk_notification_deliveries_rule_id_notification_rules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint("event_id", "rule_id", "channel_id", name="uq_notification_deliveries"),
    )
    op.create_index(
        op.f("ix_notification_deliveries_event_id"),
        "notification_deliveries",
        ["event_id"],
        unique=False,
    )
    op.create_index(
        "ix_notification_deliveries_open",
        "notification_deliveries",
        ["rule_id", "channel_id", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["notification_deliveries.id"],
            name=op.f("fk_notification_attempts_delivery_id_notification_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    op.create_index(
        op.f("ix_notification_attempts_delivery_id"),
        "notification_attempts",
        ["delivery_id"],
        unique=False,
    )
    op.add_column("job_schedules", sa.Column("expect_success_within", sa.Integer(), nullable=True))
    op.add_column("job_schedules", sa.Column("pause_after_failures", sa.Integer(), nullable=True))
    op.add_column("job_schedules", sa.Column("duration_anomaly_factor", sa.Float(), nullable=True))
    op.add_column(
        "job_schedules",
        sa.Column("health_state", sa.String(length=16), server_default="unknown", nullable=False),
    )
    op.add_column("job_schedules", sa.Column("health_reason", sa.Text(), nullable=True))
    op.add_column(
        "job_schedules",
        sa.Column(
            "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )
    op.add_column(
        "job_schedules", sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("job_templates", sa.Column("max_concurrent_runs", sa.Integer(), nullable=True))

    op.create_index(
        "ix_job_schedules_watched",
        "job_schedules",
        ["id"],
        unique=False,
        postgresql_where=sa.text("is_active AND expect_success_within IS NOT NULL"),
    )
    op.create_check_constraint(
        op.f("ck_job_schedules_health_state"),
        "job_schedules",
        "health_state IN ('unknown', 'ok', 'unhealthy', 'paused')",
    )
    op.drop_constraint(op.f("ck_job_run_targets_status"), "job_run_targets", type_="check")
    op.create_check_constraint(
        op.f("ck_job_run_targets_status"),
        "job_run_targets",
        f"status IN ({_TARGET_STATUSES}, 'skipped')",
    )


def downgrade() -> None:
    op.execute("UPDATE job_run_targets SET status = 'cancelled' WHERE status = 'skipped'")
    op.drop_constraint(op.f("ck_job_run_targets_status"), "job_run_targets", type_="check")
    op.create_check_constraint(
        op.f("ck_job_run_targets_status"), "job_run_targets", f"status IN ({_TARGET_STATUSES})"
    )
    op.drop_constraint(op.f("ck_job_schedules_health_state"), "job_schedules", type_="check")
    op.drop_index(
        "ix_job_schedules_watched",
        table_name="job_schedules",
        postgresql_where=sa.text("is_active AND expect_success_within IS NOT NULL"),
    )
    op.drop_column("job_templates", "max_concurrent_runs")
    op.drop_column("job_schedules", "last_success_at")
    op.drop_column("job_schedules", "consecutive_failures")
    op.drop_column("job_schedules", "health_reason")
    op.drop_column("job_schedules", "health_state")
    op.drop_column("job_schedules", "duration_anomaly_factor")
    op.drop_column("job_schedules", "pause_after_failures")
    op.drop_column("job_schedules", "expect_success_within")
    op.drop_index(op.f("ix_notification_attempts_delivery_id"), table_name="notification_attempts")
    op.drop_table("notification_attempts")
    op.drop_index(
        "ix_notification_deliveries_open",
        table_name="notification_deliveries",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.drop_index(op.f("ix_notification_deliveries_event_id"), table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index(op.f("ix_maintenance_windows_owner"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index(
        "uq_notification_rules_owner_name",
        table_name="notification_rules",
        postgresql_where=sa.text("NOT is_global"),
    )
    op.drop_index(
        "uq_notification_rules_global_name",
        table_name="notification_rules",
        postgresql_where=sa.text("is_global"),
    )
    op.drop_index(op.f("ix_notification_rules_owner"), table_name="notification_rules")
    op.drop_table("notification_rules")
    op.drop_index(
        "ix_notification_outbox_unprocessed",
        table_name="notification_outbox",
        postgresql_where=sa.text("NOT processed"),
    )
    op.drop_table("notification_outbox")
    op.drop_index(
        "ix_notification_events_unrouted",
        table_name="notification_events",
        postgresql_where=sa.text("NOT routed"),
    )
    op.drop_table("notification_events")
    op.drop_index(
        "uq_notification_channels_owner_name",
        table_name="notification_channels",
        postgresql_where=sa.text("NOT is_global"),
    )
    op.drop_index(
        "uq_notification_channels_global_name",
        table_name="notification_channels",
        postgresql_where=sa.text("is_global"),
    )
    op.drop_index(op.f("ix_notification_channels_owner"), table_name="notification_channels")
    op.drop_table("notification_channels")
    op.drop_table("alert_states")

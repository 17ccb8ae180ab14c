"""retry policy: job_templates/job_runs.retry_policy, job_runs.retry_at, job_run_attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00.000000

A template's (and an ad-hoc run's) retry policy beyond ``max_attempts``: backoff and
which failures count (NULL keeps the default: a lost worker only). A run waiting for its
next attempt is pending with ``retry_at``; every attempt that did not end its run (a
retried failure, a worker shut down) is kept in ``job_run_attempts``, a failed one with
its result and target rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ATTEMPT_STATUSES = "'failed', 'interrupted'"
_OUTCOMES = "'ok', 'warning', 'critical', 'unknown'"


def upgrade() -> None:
    op.add_column(
        "job_templates",
        sa.Column("retry_policy", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "job_runs",
        sa.Column("retry_policy", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("job_runs", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "job_run_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=16), nullable=True),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "finished_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("targets", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            f"status IN ({_ATTEMPT_STATUSES})", name=op.f("ck_job_run_attempts_status")
        ),
        sa.CheckConstraint(
            f"outcome IS NULL OR outcome IN ({_OUTCOMES})", name=op.f("ck_job_run_attempts_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["job_runs.id"],
            name=op.f("fk_job_run_attempts_run_id_job_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run_attempts")),
        sa.UniqueConstraint("run_id", "attempt", name="uq_job_run_attempts_run_attempt"),
    )


def downgrade() -> None:
    op.drop_table("job_run_attempts")
    op.drop_column("job_runs", "retry_at")
    op.drop_column("job_runs", "retry_policy")
    op.drop_column("job_templates", "retry_policy")

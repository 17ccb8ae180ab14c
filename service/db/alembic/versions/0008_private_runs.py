"""private runs: job_runs.private_to names the principal a private run belongs to

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12 10:00:00.000000

A run that used a private resource is visible only to the principal it ran as and to
admins. Runs recorded before this revision are marked from what they name: their
template, schedule, credential, and the credential, inventory, command template or
repository in their parameters (the NiFi clusters of older runs are not traced).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _param_id(path: str) -> str:
    """A numeric id in the parameters at ``path`` (a JSON path), else NULL."""
    return (
        f"CASE WHEN jsonb_typeof(r.parameters #> '{path}') = 'number' "
        f"AND (r.parameters #>> '{path}')::numeric BETWEEN 1 AND 2147483647 "
        f"THEN (r.parameters #>> '{path}')::numeric::int END"
    )


def _private(table: str, id_sql: str) -> str:
    return f"EXISTS (SELECT 1 FROM {table} x WHERE x.id = {id_sql} AND NOT x.is_global)"


def _repository_private() -> str:
    return (
        "EXISTS (SELECT 1 FROM git_repositories g JOIN credentials c ON c.id = g.credential_id "
        f"WHERE g.id = {_param_id('{repository_id}')} AND NOT c.is_global)"
    )


def upgrade() -> None:
    op.add_column("job_runs", sa.Column("private_to", sa.String(length=255), nullable=True))
    op.create_index("ix_job_runs_private_to", "job_runs", ["private_to"], unique=False)
    _job_type_status_index(include=["private_to"])
    private = " OR ".join(
        [
            _private("job_templates", "r.template_id"),
            _private("job_schedules", "r.schedule_id"),
            _private("credentials", "r.credential_id"),
            _private("credentials", _param_id("{credential_id}")),
            _private("command_templates", _param_id("{command_template_id}")),
            _private("inventories", _param_id("{targets,inventory_id}")),
            _repository_private(),
        ]
    )
    op.execute(
        f"UPDATE job_runs r SET private_to = COALESCE(r.executed_by, 'system') WHERE {private}"
    )


def _job_type_status_index(include: list[str]) -> None:
    """The run list's filtered index, carrying ``include`` so counts stay index-only."""
    op.drop_index("ix_job_runs_job_type_status_queued_at", table_name="job_runs")
    op.create_index(
        "ix_job_runs_job_type_status_queued_at",
        "job_runs",
        ["job_type", "status", sa.literal_column("queued_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_include=include,
    )


def downgrade() -> None:
    _job_type_status_index(include=[])
    op.drop_index("ix_job_runs_private_to", table_name="job_runs")
    op.drop_column("job_runs", "private_to")

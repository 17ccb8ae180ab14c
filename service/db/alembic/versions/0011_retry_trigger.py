"""retry trigger: a retry of a run says triggered_by = 'retry' (with retry_of_id)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:00:00.000000

Runs made by the retry endpoint were recorded as 'manual'; those already recorded (every
run with a retry_of_id) are marked 'retry'. A downgrade turns them back into 'manual'.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_CHECK = "ck_job_runs_triggered_by"
_BEFORE = "'schedule', 'manual', 'system', 'api'"
_AFTER = "'schedule', 'manual', 'system', 'api', 'retry'"


def upgrade() -> None:
    op.execute(f"ALTER TABLE job_runs DROP CONSTRAINT {_CHECK}")
    op.execute(f"ALTER TABLE job_runs ADD CONSTRAINT {_CHECK} CHECK (triggered_by IN ({_AFTER}))")
    op.execute("UPDATE job_runs SET triggered_by = 'retry' WHERE retry_of_id IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE job_runs SET triggered_by = 'manual' WHERE triggered_by = 'retry'")
    op.execute(f"ALTER TABLE job_runs DROP CONSTRAINT {_CHECK}")
    op.execute(f"ALTER TABLE job_runs ADD CONSTRAINT {_CHECK} CHECK (triggered_by IN ({_BEFORE}))")

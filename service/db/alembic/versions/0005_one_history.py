"""one history: joins the NiFi (0003) and devices (0004) branches

Revision ID: 0005
Revises: 0003, 0004
Create Date: 2026-12-05 09:00:00.000000

Both branches grew from 0002; every later revision descends from this one, so the history
has a single head and ``opsjobs migrate`` upgrades to it.
"""

from __future__ import annotations

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the join only orders what follows."""


def downgrade() -> None:
    """Nothing to undo."""

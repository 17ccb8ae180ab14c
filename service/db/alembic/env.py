"""Alembic environment: migrations run on a connection handed in by service.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.db.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations with `opsjobs migrate`")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()

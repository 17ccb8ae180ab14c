"""Alembic environment: migrations run on a connection handed in by service.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.db.all_models import MODEL_MODULES
from service.db.models import Base

assert MODEL_MODULES  # every table module is imported before metadata is read
connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations with `opsjobs migrate`")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()

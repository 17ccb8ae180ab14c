"""Create the database if missing and bring its schema to the newest migration."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).parent / "alembic"
# Serialises concurrent `opsjobs migrate` / `up` processes against one database.
MIGRATION_LOCK_ID = 0x6F70736A


async def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` when it does not exist; True when created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError("database url names no database")
    maintenance = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(maintenance.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        logger.info("created database %s", name)
        return True
    finally:
        await conn.close()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade to head inside the caller's event loop (alembic runs on the sync facade)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)

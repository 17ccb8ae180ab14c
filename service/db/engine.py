"""Engine and session factories, made once per process by a lifecycle hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from service.settings import DatabaseSettings

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An asyncpg engine; every session uses UTC so timestamps never depend on the server zone."""
    return create_async_engine(
        settings.url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "opsjobs"}},
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def single_statement(sessions: SessionFactory) -> AsyncIterator[AsyncConnection]:
    """A connection in autocommit mode for one atomic statement on a hot path.

    Saves the BEGIN and COMMIT round trips a session transaction would add.
    """
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def redacted_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)

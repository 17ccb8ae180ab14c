"""Engine and session factories, made once per process by a lifecycle hook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

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


def engine_of(sessions: SessionFactory) -> AsyncEngine:
    """The engine a session factory is bound to."""
    engine: AsyncEngine = sessions.kw["bind"]
    return engine


@asynccontextmanager
async def single_statement(sessions: SessionFactory) -> AsyncIterator[AsyncConnection]:
    """A connection in autocommit mode for one atomic statement on a hot path.

    Saves the BEGIN and COMMIT round trips a session transaction would add.
    """
    async with engine_of(sessions).connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


_ASYNCPG_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class DriverStatement:
    """A Core statement compiled once and executed straight on the asyncpg connection.

    For the few statements every run executes (creating, taking, finishing it): SQLAlchemy's
    per-execution work (execution context, parameter processing, result wrapping) costs
    more CPU than the round trip itself. The statement is still written in SQLAlchemy;
    only its execution is lean. One statement, autocommit, like :func:`single_statement`.
    The dialect's JSON codecs take JSON text and return decoded values: parameters named
    in ``json_params`` are encoded here.
    """

    def __init__(self, statement: ClauseElement, *, json_params: Collection[str] = ()) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=_ASYNCPG_DIALECT))
        self.sql = str(compiled)
        self._names = tuple(compiled.positiontup or ())
        binds = {name: compiled.binds[name] for name in self._names}
        self._defaults = {name: bind.effective_value for name, bind in binds.items()}
        self._required = frozenset(name for name, bind in binds.items() if bind.required)
        # Python-side column defaults, which SQLAlchemy would fill in per execution.
        prefetch = [(column, column.default) for column in compiled.insert_prefetch]
        prefetch += [(column, column.onupdate) for column in compiled.update_prefetch]
        for column, default in prefetch:
            if default is None or not default.is_scalar:
                raise ValueError(f"{column} needs a value computed per execution; pass it")
            self._defaults[column.key] = default.arg  # type: ignore[attr-defined]
        self._json = frozenset(json_params)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        missing = self._required.difference(params)
        if missing:
            raise TypeError(f"missing statement parameters: {', '.join(sorted(missing))}")
        values = {**self._defaults, **params}
        return [
            json.dumps(values[name])
            if name in self._json and values[name] is not None
            else values[name]
            for name in self._names
        ]

    async def fetchrow(self, sessions: SessionFactory, **params: Any) -> asyncpg.Record | None:
        engine = engine_of(sessions)
        arguments = self.arguments(params)
        async with engine.connect() as conn:
            pooled = await conn.get_raw_connection()
            driver: asyncpg.Connection = pooled.driver_connection
            try:
                return await driver.fetchrow(self.sql, *arguments)
            except Exception as error:
                raise await _database_error(engine, conn, self.sql, error) from error


async def _database_error(
    engine: AsyncEngine, conn: AsyncConnection, sql: str, error: Exception
) -> StatementError:
    """The error SQLAlchemy would have raised for ``error`` (so callers and the API's error
    handlers see one kind), with a broken connection taken out of the pool as it would."""
    dialect = engine.dialect
    pooled = await conn.get_raw_connection()
    try:
        pooled.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
    except Exception as translated:
        wrapped = DBAPIError.instance(
            sql,
            None,
            translated,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(
                cast(Any, translated), pooled.dbapi_connection, None
            ),
            dialect=dialect,
        )
        if isinstance(wrapped, DBAPIError) and wrapped.connection_invalidated:
            await conn.invalidate()
        return wrapped
    raise AssertionError("the dialect re-raises every error")  # pragma: no cover


def redacted_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)

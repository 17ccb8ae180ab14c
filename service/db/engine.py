"""Engine and session factories, made once per process by a lifecycle hook."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import asyncpg
from asyncpg.exceptions import (
    ClientConfigurationError,
    InternalClientError,
    OutdatedSchemaCacheError,
    PostgresError,
    TargetServerAttributeNotMatched,
    UnsupportedClientFeatureError,
    UnsupportedServerFeatureError,
)
from asyncpg.exceptions._base import DataError as ClientDataError
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from service.errors import ServiceUnavailable
from service.settings import DatabaseSettings

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")

logger = logging.getLogger(__name__)

# SQLSTATE classes and codes that mean the session is gone: 08 connection exception,
# 57P01 admin shutdown (pg_terminate_backend), 57P02 crash shutdown, 57P03 cannot connect
# now (starting up or shutting down).
_LOST_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")
# asyncpg errors of these kinds are about the statement or the setup, not the connection.
_NOT_LOST = (
    ClientDataError,
    ClientConfigurationError,
    UnsupportedClientFeatureError,
    UnsupportedServerFeatureError,
    OutdatedSchemaCacheError,
    TargetServerAttributeNotMatched,
)


def is_lost_connection(error: BaseException) -> bool:
    """True when ``error`` (or the driver error it wraps) means the database connection is
    gone.

    A lost connection is any of: a connection SQLAlchemy already invalidated; asyncpg's
    connection-state errors (``InterfaceError`` such as "connection is closed",
    ``InternalClientError`` such as "cannot switch to state …; another operation is in
    progress", which leaves the protocol unusable); a server error of SQLSTATE class 08
    or 57P01–57P03 (terminated backend, server shutting down or starting); and socket
    errors (``OSError``: refused, reset, timed out) raised by the driver or connecting.
    Only SQLAlchemy's and asyncpg's wrappers are looked into: a Redis or HTTP error caused
    by a socket error is not a lost database connection.
    """
    current: BaseException | None = error
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, DatabaseUnavailable):
            return True  # what retry_lost raises once it gave up
        if isinstance(
            current, asyncpg.InterfaceError | InternalClientError | OSError
        ) and not isinstance(current, _NOT_LOST):
            return True
        if isinstance(current, PostgresError):
            sqlstate = str(getattr(current, "sqlstate", "") or "")
            return sqlstate.startswith(_LOST_SQLSTATE_PREFIXES)
        if isinstance(current, StatementError):
            current = current.orig
        elif type(current).__module__.startswith(("sqlalchemy.", "asyncpg.")):
            current = current.__cause__
        else:
            return False
    return False


def _mark_disconnect(context: ExceptionContext) -> None:
    """Make SQLAlchemy invalidate the connection on every kind of lost connection, not only
    when asyncpg already reports it closed, so a broken connection never goes back to the
    pool."""
    if not context.is_disconnect and is_lost_connection(context.original_exception):
        context.is_disconnect = True


def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pooled connection the server closed while it was idle is replaced at checkout
    (the pool retries with a new one) — free, unlike a ping per checkout."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("connection closed while pooled")


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An asyncpg engine; every session uses UTC so timestamps never depend on the server zone.

    Every lost connection is invalidated (``is_lost_connection``), and a connection closed
    while pooled is replaced at checkout: the pool recovers by itself after connections
    are terminated or the server restarts.
    """
    engine = create_async_engine(
        settings.url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "opsjobs"}},
    )
    event.listen(engine.sync_engine, "handle_error", _mark_disconnect)
    event.listen(engine.sync_engine.pool, "checkout", _checkout)
    return engine


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL could not be reached after the bounded retries of :func:`retry_lost`."""

    def __init__(self, what: str, error: BaseException) -> None:
        cause = f"{type(error).__name__}: {error}".rstrip(": ")
        super().__init__(f"database unavailable during {what} ({cause})")


#: Waits between the attempts of :func:`retry_lost`: about 30 s in all, so a PostgreSQL
#: restart or a short outage costs a run nothing.
RETRY_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 5.0, 6.0, 7.0)


async def retry_lost(
    what: str,
    operation: Callable[[], Awaitable[T]],
    *,
    delays: Collection[float] | None = None,
) -> T:
    """Run ``operation`` again after a lost connection, with growing waits, then raise
    :class:`DatabaseUnavailable` naming ``what``.

    Only for operations that are safe to repeat: one idempotent statement, or one
    guarded transaction (cut before its COMMIT it did not commit; cut during it, the
    repeat is refused by its guard and the caller checks what the first try left).
    """
    for delay in (*(RETRY_DELAYS_S if delays is None else delays), None):
        try:
            return await operation()
        except Exception as error:
            if not is_lost_connection(error):
                raise
            if delay is None:
                raise DatabaseUnavailable(what, error) from error
            logger.debug("database connection lost during %s; retrying", what)
            await asyncio.sleep(delay * (0.8 + random.random() * 0.4))
    raise AssertionError("unreachable")  # pragma: no cover


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
        """Execute and return the first row.

        A connection found broken before the statement was sent (closed, or its protocol
        left busy by an operation cut short) is invalidated and the statement runs once
        more on a fresh one; a connection lost while it ran is invalidated and reported
        (``DBAPIError`` with ``connection_invalidated``): whether it committed is unknown.
        """
        engine = engine_of(sessions)
        arguments = self.arguments(params)
        for last_try in (False, True):
            async with engine.connect() as conn:
                pooled = await conn.get_raw_connection()
                driver: asyncpg.Connection = pooled.driver_connection
                unsent = driver.is_closed()
                try:
                    return await driver.fetchrow(self.sql, *arguments)
                except Exception as error:
                    unsent = unsent or isinstance(error, InternalClientError)
                    wrapped = await _database_error(engine, conn, self.sql, error)
                    if last_try or not (unsent and wrapped.connection_invalidated):
                        raise wrapped from error
        raise AssertionError("unreachable")  # pragma: no cover


async def _database_error(
    engine: AsyncEngine, conn: AsyncConnection, sql: str, error: Exception
) -> DBAPIError:
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
            connection_invalidated=is_lost_connection(error)
            or dialect.is_disconnect(cast(Any, translated), pooled.dbapi_connection, None),
            dialect=dialect,
        )
        assert isinstance(wrapped, DBAPIError)
        if wrapped.connection_invalidated:
            await conn.invalidate()
        return wrapped
    raise AssertionError("the dialect re-raises every error")  # pragma: no cover


def redacted_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)

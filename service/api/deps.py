"""Dependency aliases for route signatures.

The getters are ``async def`` although they never wait: FastAPI runs a plain ``def``
dependency in a worker thread, a thread hand-off per dependency per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import SessionFactory, is_lost_connection
from service.scheduling.windows import WindowCache
from service.secrets import KeyStore
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


async def get_sessions(request: Request) -> SessionFactory:
    return cast(SessionFactory, request.state.sessions)


async def get_redis(request: Request) -> ArqRedis:
    return cast(ArqRedis, request.state.redis)


async def get_keys(request: Request) -> KeyStore:
    return cast(KeyStore, request.state.keys)


async def get_windows(request: Request) -> WindowCache:
    return cast(WindowCache, request.state.windows)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    session = (await get_sessions(request))()
    try:
        yield session
    finally:
        try:
            await session.close()
        except Exception as error:
            # Closing rolls back; on a connection the server dropped after the answer was
            # made there is nothing to roll back (the connection is already invalidated).
            if not is_lost_connection(error):
                raise


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[ArqRedis, Depends(get_redis)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
WindowsDep = Annotated[WindowCache, Depends(get_windows)]

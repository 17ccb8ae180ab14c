"""Dependency aliases for route signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import SessionFactory
from service.secrets import KeyStore
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def get_sessions(request: Request) -> SessionFactory:
    return cast(SessionFactory, request.state.sessions)


def get_redis(request: Request) -> ArqRedis:
    return cast(ArqRedis, request.state.redis)


def get_keys(request: Request) -> KeyStore:
    return cast(KeyStore, request.state.keys)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_sessions(request)() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
RedisDep = Annotated[ArqRedis, Depends(get_redis)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]

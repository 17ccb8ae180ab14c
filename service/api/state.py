"""What the API's lifespan creates once and every request borrows."""

from __future__ import annotations

from typing import TypedDict

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import SessionFactory
from service.inventory.nautobot import NautobotClient
from service.scheduling.windows import WindowCache
from service.secrets import KeyStore
from service.settings import Settings


class AppState(TypedDict):
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    redis: ArqRedis
    keys: KeyStore
    nautobot: NautobotClient
    windows: WindowCache

"""``create_app(settings)``: the FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api.docs import install_offline_docs
from service.api.error_schema import ERROR_RESPONSES
from service.api.errors import install_error_handlers
from service.api.retry import RetryLostConnection
from service.api.routes import (
    audit,
    command_templates,
    credentials,
    device_backups,
    git_repositories,
    health,
    inventories,
    maintenance_windows,
    metrics,
    nifi_clusters,
    nifi_instances,
    notification_channels,
    notification_deliveries,
    notification_rules,
    queues,
    run_events,
    runs,
    scheduler,
    schedules,
    templates,
    tokens,
    workers,
)
from service.api.state import AppState
from service.db.engine import create_engine, create_session_factory
from service.devices.clients import make_nautobot_client
from service.keyspace import open_redis
from service.scheduling.windows import WindowCache
from service.secrets import KeyRing, KeyStore
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the app; its lifespan makes the engine and Redis pool once and closes them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        ring = await asyncio.to_thread(KeyRing.load, settings.secrets.key_file)
        engine = create_engine(settings.database)
        redis = await open_redis(settings.redis.url, settings.redis.prefix)
        nautobot = make_nautobot_client(settings.nautobot)
        sessions = create_session_factory(engine)
        try:
            yield AppState(
                settings=settings,
                engine=engine,
                sessions=sessions,
                redis=redis,
                keys=KeyStore(ring),
                nautobot=nautobot,
                windows=WindowCache(sessions),
            )
        finally:
            await nautobot.aclose()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="opsjobs",
        summary="Job execution for NiFi clusters and network devices",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # The docs pages are served offline by install_offline_docs.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RetryLostConnection)
    install_offline_docs(app)
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(templates.router)
    app.include_router(schedules.router)
    app.include_router(scheduler.router)
    app.include_router(workers.router)
    app.include_router(credentials.router)
    app.include_router(nifi_clusters.router)
    app.include_router(nifi_instances.router)
    app.include_router(tokens.router)
    app.include_router(audit.router)
    app.include_router(run_events.router)
    app.include_router(inventories.router)
    app.include_router(command_templates.router)
    app.include_router(git_repositories.router)
    app.include_router(device_backups.router)
    app.include_router(queues.router)
    app.include_router(notification_channels.router)
    app.include_router(notification_rules.router)
    app.include_router(notification_deliveries.router)
    app.include_router(maintenance_windows.router)
    app.include_router(metrics.router)
    return app

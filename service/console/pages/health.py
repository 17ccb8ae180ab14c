"""Health: queues, workers, the scheduler, NiFi clusters' latest colours, device backups."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from service.access.visibility import runs_visible_to
from service.console.context import StoresDep, ViewerDep
from service.console.routing import ConsoleRoute
from service.db.nifi_models import NifiClusterRow
from service.gitstore.backups import backed_up_devices
from service.queue.control import queue_stats
from service.runs.queries import latest_target_results
from service.scheduling.status import read_scheduler_status
from service.worker.health import live_workers

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

RECENT_BACKUPS = 20


@router.get("/health")
async def health_page(request: Request, viewer: ViewerDep, stores: StoresDep) -> Response:
    viewer.principal.check("settings.queues:read")
    queues = await queue_stats(
        stores.sessions,
        stores.redis,
        stores.settings.queues.names(),
        runs_visible_to(viewer.principal),
    )
    workers = await live_workers(stores.redis)
    now = datetime.now(UTC)
    async with stores.sessions() as session:
        scheduler = await read_scheduler_status(session, stores.redis, viewer.principal)
        clusters = (
            await session.execute(
                select(NifiClusterRow.id, NifiClusterRow.name).order_by(NifiClusterRow.name)
            )
        ).all()
        checks = await latest_target_results(session, viewer.principal, "check_queues")
        backups = await backed_up_devices(session, viewer.principal, limit=RECENT_BACKUPS)
    return stores.renderer.page(
        request,
        "health.html",
        {
            "viewer": viewer,
            "nav": "health",
            "queues": queues,
            "workers": [
                (worker, max(0.0, (now - worker.beat_at).total_seconds())) for worker in workers
            ],
            "scheduler": scheduler,
            "clusters": [(cluster, checks.get(str(cluster.id))) for cluster in clusters],
            "backups": backups,
        },
    )

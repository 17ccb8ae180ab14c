"""Backups: devices by their last backup; one device's versions and a diff of any two."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from service.console.context import StoresDep, ViewerDep
from service.console.routing import ConsoleRoute
from service.gitstore.backups import backed_up_devices, backup_files, file_diff, file_versions
from service.runs.queries import target_history

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 100
# Backup runs listed for a device (changed, unchanged or failed).
HISTORY = 30
Commit = Annotated[str | None, Query(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F]+$")]


@router.get("/backups")
async def backups_page(
    request: Request,
    viewer: ViewerDep,
    stores: StoresDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    viewer.principal.check("jobs.runs:read")
    async with stores.sessions() as session:
        devices = await backed_up_devices(
            session, viewer.principal, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
    return stores.renderer.page(
        request,
        "backups.html",
        {
            "viewer": viewer,
            "nav": "backups",
            "devices": devices[:PAGE_SIZE],
            "page": page,
            "more": len(devices) > PAGE_SIZE,
        },
    )


@router.get("/backups/{device_id}")
async def device_page(
    request: Request,
    device_id: Annotated[str, Path(max_length=64)],
    viewer: ViewerDep,
    stores: StoresDep,
    kind: Annotated[str, Query(pattern="^(running|startup)$")] = "running",
    from_commit: Annotated[Commit, Query(alias="from")] = None,
    to_commit: Annotated[Commit, Query(alias="to")] = None,
) -> Response:
    viewer.principal.check("jobs.runs:read")
    async with stores.sessions() as session:
        rows = await backup_files(session, viewer.principal, device_id, None, None)
        history = await target_history(
            session, viewer.principal, "backup", device_id, limit=HISTORY
        )
    files = await file_versions(stores.settings, stores.redis, rows)
    diff = None
    chosen = next((row for row in rows if row[0].kind == kind), None)
    if chosen is not None and from_commit and to_commit:
        backup, repository = chosen
        diff = await file_diff(
            stores.settings, stores.redis, backup, repository, old=from_commit, new=to_commit
        )
    return stores.renderer.page(
        request,
        "backup.html",
        {
            "viewer": viewer,
            "nav": "backups",
            "device_id": device_id,
            "device_name": rows[0][0].device_name,
            "files": files,
            "kind": kind,
            "from_commit": from_commit,
            "to_commit": to_commit,
            "diff": diff,
            "history": history,
        },
    )

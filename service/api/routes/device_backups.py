"""``/api/devices/{device_id}/backups``: a device's configuration versions, from git.

The versions are a backed-up file's commits, newest first, and the diff compares two of
them (read by ``service.gitstore.backups``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query
from pydantic import BaseModel

from service.api.auth import RunsReader
from service.api.deps import RedisDep, SessionDep, SettingsDep
from service.gitstore.backups import backup_files, file_diff, file_versions

router = APIRouter(prefix="/api/devices", tags=["device-backups"])

Kind = Literal["running", "startup"]


class VersionOut(BaseModel):
    commit: str
    committed_at: datetime
    author: str
    message: str


class BackupFileOut(BaseModel):
    repository_id: int
    repository_name: str
    kind: Kind
    path: str
    last_run_id: int | None
    versions: list[VersionOut]


class BackupsOut(BaseModel):
    device_id: str
    device_name: str | None
    files: list[BackupFileOut]


class DiffOut(BaseModel):
    device_id: str
    repository_id: int
    kind: Kind
    path: str
    from_commit: str
    to_commit: str
    diff: str


@router.get("/{device_id}/backups", response_model=BackupsOut)
async def list_backups(
    device_id: str,
    caller: RunsReader,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    repository_id: int | None = None,
    kind: Kind | None = None,
) -> BackupsOut:
    """Each backed-up file of the device with its versions (commits), newest first."""
    rows = await backup_files(session, caller, device_id, repository_id, kind)
    files = [
        BackupFileOut(
            repository_id=item.repository_id,
            repository_name=item.repository_name,
            kind=cast(Kind, item.kind),
            path=item.path,
            last_run_id=item.last_run_id,
            versions=[
                VersionOut(
                    commit=v.commit, committed_at=v.committed_at, author=v.author, message=v.message
                )
                for v in item.versions
            ],
        )
        for item in await file_versions(settings, redis, rows)
    ]
    return BackupsOut(device_id=device_id, device_name=rows[0][0].device_name, files=files)


@router.get("/{device_id}/backups/diff", response_model=DiffOut)
async def diff_backups(
    device_id: str,
    caller: RunsReader,
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    from_commit: Annotated[str, Query(alias="from", min_length=4, max_length=64)],
    to_commit: Annotated[str, Query(alias="to", min_length=4, max_length=64)],
    kind: Kind = "running",
    repository_id: int | None = None,
) -> DiffOut:
    """The unified diff of one backed-up file between two of its versions."""
    rows = await backup_files(session, caller, device_id, repository_id, kind)
    backup, repository = rows[0]
    diff = await file_diff(settings, redis, backup, repository, old=from_commit, new=to_commit)
    return DiffOut(
        device_id=device_id,
        repository_id=repository.id,
        kind=kind,
        path=backup.path,
        from_commit=from_commit,
        to_commit=to_commit,
        diff=diff,
    )

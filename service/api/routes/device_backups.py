"""``/api/devices/{device_id}/backups``: a device's configuration versions, from git.

Backup runs record which file of which repository holds each device's running and startup
configuration; the versions are that file's commits, newest first, and the diff compares
two of them. Versions are read from the checkout under ``git.checkout_root`` on this host.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from service.api.auth import RunsReader
from service.api.deps import RedisDep, SessionDep, SettingsDep
from service.db.device_models import DeviceBackupFile, GitRepository
from service.errors import NotFound
from service.gitstore.locks import RepositoryLocks
from service.gitstore.repositories import open_store
from service.gitstore.store import GitConfigStore
from service.settings import Settings

router = APIRouter(prefix="/api/devices", tags=["device-backups"])

Kind = Literal["running", "startup"]
#: Versions listed per file.
MAX_VERSIONS = 100


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


async def _backup_files(
    session: SessionDep, device_id: str, repository_id: int | None, kind: Kind | None
) -> list[tuple[DeviceBackupFile, GitRepository]]:
    query = (
        select(DeviceBackupFile, GitRepository)
        .join(GitRepository, GitRepository.id == DeviceBackupFile.repository_id)
        .where(DeviceBackupFile.device_id == device_id)
        .order_by(DeviceBackupFile.updated_at.desc(), DeviceBackupFile.kind)
    )
    if repository_id is not None:
        query = query.where(DeviceBackupFile.repository_id == repository_id)
    if kind is not None:
        query = query.where(DeviceBackupFile.kind == kind)
    rows = [(row[0], row[1]) for row in await session.execute(query)]
    if not rows:
        raise NotFound(f"device {device_id} has no backups")
    return rows


def _reader(
    settings: Settings, repository: GitRepository, locks: RepositoryLocks
) -> GitConfigStore:
    """A store reading versions: synced from the remote unless that needs the repository's
    credential, which only workers decrypt; then the checkout the workers wrote."""
    return open_store(settings.git, repository, locks, remote=repository.credential_id is None)


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
    rows = await _backup_files(session, device_id, repository_id, kind)
    locks = RepositoryLocks(redis, wait=settings.git.lock_wait)
    files = []
    for backup, repository in rows:
        store = _reader(settings, repository, locks)
        history = await store.history(backup.path, limit=MAX_VERSIONS)
        files.append(
            BackupFileOut(
                repository_id=repository.id,
                repository_name=repository.name,
                kind=backup.kind,
                path=backup.path,
                last_run_id=backup.last_run_id,
                versions=[
                    VersionOut(
                        commit=v.commit,
                        committed_at=v.committed_at,
                        author=v.author,
                        message=v.message,
                    )
                    for v in history
                ],
            )
        )
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
    rows = await _backup_files(session, device_id, repository_id, kind)
    backup, repository = rows[0]
    store = _reader(settings, repository, RepositoryLocks(redis))
    diff = await store.diff_versions(backup.path, from_commit, to_commit)
    return DiffOut(
        device_id=device_id,
        repository_id=repository.id,
        kind=kind,
        path=backup.path,
        from_commit=from_commit,
        to_commit=to_commit,
        diff=diff,
    )

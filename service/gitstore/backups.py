"""Reading devices' backed-up configurations: which devices, their versions, diffs.

Backup runs record which file of which repository holds each device's running and startup
configuration; the versions are that file's commits, newest first. Versions are read from
the checkout under ``git.checkout_root`` on this host. The API and the console read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principals import Principal
from service.access.visibility import holders_usable_by
from service.db.device_models import DeviceBackupFile, GitRepository
from service.errors import NotFound
from service.gitstore.locks import RepositoryLocks
from service.gitstore.repositories import open_store
from service.gitstore.store import FileVersion, GitConfigStore
from service.settings import Settings

#: Versions listed per file.
MAX_VERSIONS = 100


@dataclass(frozen=True)
class BackedUpFile:
    repository_id: int
    repository_name: str
    kind: str
    path: str
    last_run_id: int | None
    versions: list[FileVersion]


@dataclass(frozen=True)
class BackedUpDevice:
    device_id: str
    device_name: str
    last_backup_at: datetime
    last_run_id: int | None


async def backup_files(
    session: AsyncSession,
    caller: Principal,
    device_id: str,
    repository_id: int | None,
    kind: str | None,
) -> list[tuple[DeviceBackupFile, GitRepository]]:
    """The device's backed-up files (newest first) in repositories the caller may use (a
    repository holding someone's private credential keeps its backups to those who may
    use it); 404 when it has none."""
    query = (
        select(DeviceBackupFile, GitRepository)
        .join(GitRepository, GitRepository.id == DeviceBackupFile.repository_id)
        .where(DeviceBackupFile.device_id == device_id, holders_usable_by(GitRepository, caller))
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


async def file_versions(
    settings: Settings,
    redis: ArqRedis,
    rows: list[tuple[DeviceBackupFile, GitRepository]],
) -> list[BackedUpFile]:
    """Each backed-up file with its versions (commits), newest first."""
    locks = RepositoryLocks(redis, wait=settings.git.lock_wait)
    files = []
    for backup, repository in rows:
        history = await _reader(settings, repository, locks).history(
            backup.path, limit=MAX_VERSIONS
        )
        files.append(
            BackedUpFile(
                repository_id=repository.id,
                repository_name=repository.name,
                kind=backup.kind,
                path=backup.path,
                last_run_id=backup.last_run_id,
                versions=history,
            )
        )
    return files


async def file_diff(
    settings: Settings,
    redis: ArqRedis,
    backup: DeviceBackupFile,
    repository: GitRepository,
    *,
    old: str,
    new: str,
) -> str:
    """The unified diff of one backed-up file between two of its versions."""
    store = _reader(settings, repository, RepositoryLocks(redis))
    return await store.diff_versions(backup.path, old, new)


async def backed_up_devices(
    session: AsyncSession, caller: Principal, *, limit: int, offset: int = 0
) -> list[BackedUpDevice]:
    """Devices with backups in repositories the caller may use, the most recently backed up
    first."""
    last = func.max(DeviceBackupFile.updated_at)
    rows = await session.execute(
        select(
            DeviceBackupFile.device_id,
            func.max(DeviceBackupFile.device_name),
            last,
            func.max(DeviceBackupFile.last_run_id),
        )
        .join(GitRepository, GitRepository.id == DeviceBackupFile.repository_id)
        .where(holders_usable_by(GitRepository, caller))
        .group_by(DeviceBackupFile.device_id)
        .order_by(last.desc(), DeviceBackupFile.device_id)
        .offset(offset)
        .limit(limit)
    )
    return [
        BackedUpDevice(device_id=device_id, device_name=name, last_backup_at=at, last_run_id=run)
        for device_id, name, at, run in rows
    ]

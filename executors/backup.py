"""``backup``: fetch device configurations over SSH and commit the changed ones to git.

Per device: the running configuration, and the startup configuration where the platform
has one (Junos has none), read with the platform's own commands and cleaned of lines that
change on every read. Files are placed by path templates checked when the template is
saved (no ``..``, no absolute paths) and written in one commit per run, under the
repository's lock, naming the run; files whose content did not change are not committed,
so a run delivered twice (a worker died after committing) makes no second commit. Each
device's target row says ``changed``, ``unchanged`` or ``failed`` with a diff summary.
With ``timestamp_custom_field`` set, every device backed up gets today's date in that
Nautobot custom field.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from executors.base import Executor, JobContext, JobResult, ResolveContext, Target, TargetResult
from service.access.credentials import load_credential
from service.access.resources import ResourceKind, ResourceRef
from service.db.device_models import DeviceBackupFile, GitRepository
from service.db.models import Outcome, TargetStatus
from service.devices.logins import run_credential_id, ssh_credentials
from service.devices.results import ConfigResult
from service.devices.targeting import (
    DeviceTargetSpec,
    from_cache,
    interleave_by_site,
    resolve_run_devices,
)
from service.errors import InvalidInput, NotFound, OpsjobsError
from service.gitstore.paths import (
    DEFAULT_RUNNING_PATH,
    DEFAULT_STARTUP_PATH,
    InvalidPath,
    render_device_path,
    validate_path_template,
)
from service.gitstore.remote_auth import remote_environment
from service.gitstore.repositories import open_store
from service.gitstore.store import FileResult, FileWrite, WriteOutcome
from service.inventory.device import Device
from service.inventory.nautobot import NautobotError

logger = logging.getLogger(__name__)

#: Backup-index rows per INSERT (7 parameters each, well under the protocol's limit).
INDEX_BATCH = 1000
#: Nautobot PATCH requests in flight at once for the timestamp write-back.
TIMESTAMP_CONCURRENCY = 10


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: DeviceTargetSpec
    repository_id: Annotated[int, ResourceRef(ResourceKind.GIT_REPOSITORY)] = Field(ge=1)
    running_path: str = Field(default=DEFAULT_RUNNING_PATH, max_length=1024)
    # None: startup configurations are not stored.
    startup_path: str | None = Field(default=DEFAULT_STARTUP_PATH, max_length=1024)
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = Field(
        default=None, ge=1
    )
    concurrency: int | None = Field(default=None, ge=1, le=10_000)
    # A Nautobot custom field (its key) set to today's date (UTC) on every device backed up.
    timestamp_custom_field: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64
    )

    @field_validator("running_path", "startup_path")
    @classmethod
    def _safe_template(cls, value: str | None) -> str | None:
        return None if value is None else validate_path_template(value)

    @model_validator(mode="after")
    def _distinct_paths(self) -> Config:
        if self.startup_path == self.running_path:
            raise ValueError("running_path and startup_path must differ")
        return self


class AllDevicesFailed(OpsjobsError):
    """No device could be backed up; the run fails with its per-device rows kept."""

    code = "all_devices_failed"


@dataclass(frozen=True)
class Fetched:
    """A device whose configuration was read, with the files it should become."""

    device: Device
    config: ConfigResult
    files: tuple[FileWrite, ...]


async def resolve_targets(ctx: ResolveContext, config: Config) -> list[Target]:
    """The target devices, keyed by Nautobot id, each carrying its record."""
    resolution = await resolve_run_devices(
        ctx.services.device_resolver(), ctx.services.sessions, config.targets, run_id=ctx.run_id
    )
    return [
        Target(key=d.id, name=d.name, data={"device": d, "from_cache": resolution.cached})
        for d in resolution.devices
    ]


def _device_data(device: Device, config: ConfigResult | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"device_id": device.id, "device_name": device.name}
    if config is not None:
        data.update(
            host=config.host,
            port=config.port,
            platform=config.platform,
            running_bytes=len(config.running or ""),
            startup_bytes=None if config.startup is None else len(config.startup),
            error_code=config.error_code,
            duration=round(config.duration, 3),
        )
    return data


def _files_for(device: Device, result: ConfigResult, config: Config) -> list[FileWrite]:
    files = [
        FileWrite(
            f"{device.id}:running",
            render_device_path(config.running_path, device),
            result.running or "",
        )
    ]
    # Startup only where the platform has one and the device has one saved (the origin's
    # rule: an empty startup configuration is not written).
    if config.startup_path and result.startup:
        files.append(
            FileWrite(
                f"{device.id}:startup",
                render_device_path(config.startup_path, device),
                result.startup,
            )
        )
    return files


def _file_data(result: FileResult) -> dict[str, Any]:
    return {
        "kind": result.key.rsplit(":", 1)[1],
        "path": result.path,
        "status": result.status,
        "added": result.added,
        "removed": result.removed,
        "created": result.created,
        "diff": result.diff,
        "error": result.error,
    }


def _device_status(files: list[FileResult]) -> str:
    if any(f.status == "failed" for f in files):
        return "failed"
    return "changed" if any(f.status == "changed" for f in files) else "unchanged"


async def _load_repository(job: JobContext[Config]) -> GitRepository:
    async with job.services.sessions() as session:
        repository = await session.get(GitRepository, job.config.repository_id)
    if repository is None:
        raise NotFound(f"git repository {job.config.repository_id} does not exist")
    return repository


async def execute(job: JobContext[Config]) -> JobResult:
    """Fetch every target device's configurations, then commit what changed."""
    services = job.services
    repository = await _load_repository(job)
    credential_id = await run_credential_id(services.sessions, job.run_id, job.config.credential_id)
    login = await ssh_credentials(services.sessions, services.keys, credential_id)
    fetched: dict[str, Fetched] = {}

    async def fetch(target: Target) -> TargetResult:
        device: Device = target.data["device"]
        result = await services.ssh.fetch_configs(device, login)
        data = _device_data(device, result)
        if not result.ok:
            return TargetResult(Outcome.UNKNOWN, {**data, "status": "failed"}, result.error)
        try:
            files = _files_for(device, result, job.config)
        except InvalidPath as exc:
            return TargetResult(Outcome.UNKNOWN, {**data, "status": "failed"}, exc.message)
        fetched[target.key] = Fetched(device, result, tuple(files))
        return TargetResult(Outcome.OK, {**data, "status": "fetched"})

    concurrency = job.config.concurrency or services.settings.ssh.max_sessions
    order = interleave_by_site(job.targets, lambda target: target.data["device"].location)
    # A fetched device is finished (once) by _report_devices, after the commit.
    outcomes = await job.fan_out(
        fetch, concurrency=concurrency, targets=order, finish_succeeded=False
    )
    total = len(outcomes)
    writes = [file for item in fetched.values() for file in item.files]
    await job.reporter.progress(total, total, "committing to git")
    written = await _commit(job, repository, writes, devices=len(fetched))
    counts, backed_up = await _report_devices(job, fetched, written)
    counts["failed"] += total - len(fetched)
    timestamps = await _write_timestamps(job, backed_up)
    data: dict[str, Any] = {
        "repository": {"id": repository.id, "name": repository.name},
        "commit": written.commit,
        "pushed": written.pushed,
        "warnings": list(written.warnings),
        "git_error": written.error,
        "total": total,
        **counts,
        "targets_from_cache": from_cache([t.data for t in job.targets]),
    }
    if timestamps is not None:
        data["timestamp_update"] = timestamps
    job.checkpoint(data)
    if total and counts["failed"] == total:
        first = written.error or next(
            (o.result.error for o in outcomes if o.status is TargetStatus.FAILED), None
        )
        raise AllDevicesFailed(f"all {total} device(s) failed (first error: {first})")
    summary = (
        f"{counts['changed']} changed, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed of {total} device(s)"
    )
    if not total:
        summary = "the targets matched no device"
    timestamps_failed = bool(timestamps and timestamps["failed"])
    warned = counts["failed"] or written.warnings or timestamps_failed or not total
    outcome = Outcome.WARNING if warned else Outcome.OK
    return JobResult(outcome=outcome, summary=summary, data=data)


async def _commit(
    job: JobContext[Config], repository: GitRepository, writes: list[FileWrite], *, devices: int
) -> WriteOutcome:
    """Write the files in one commit, logging in to the remote with the repository's
    credential (decrypted here, just before use); a login that cannot serve the remote
    fails every file with the reason, like any other repository failure."""
    services = job.services
    message = f"Backup of {devices} device(s) by opsjobs run {job.run_id}"
    try:
        login = None
        if repository.credential_id is not None:
            login = await load_credential(
                services.sessions, services.keys, repository.credential_id
            )
        async with remote_environment(repository.url, login, services.settings.ssh) as env:
            store = open_store(services.settings.git, repository, services.git_locks, env)
            return await store.write_files(writes, message=message)
    except (InvalidInput, NotFound) as exc:
        failed = tuple(FileResult(w.key, w.path, "failed", error=exc.message) for w in writes)
        return WriteOutcome(failed, error=exc.message)


async def _report_devices(
    job: JobContext[Config], fetched: dict[str, Fetched], written: WriteOutcome
) -> tuple[dict[str, int], list[str]]:
    """Record each fetched device's final status on its target row and the backup index.

    Returns the counts per status and the ids of the devices backed up.
    """
    by_key = {result.key: result for result in written.files}
    counts = {"changed": 0, "unchanged": 0, "failed": 0}
    backed_up: list[str] = []
    index_rows: list[dict[str, Any]] = []
    for key, item in fetched.items():
        files = [by_key[f.key] for f in item.files]
        status = _device_status(files)
        counts[status] += 1
        if status != "failed":
            backed_up.append(item.device.id)
        added = sum(f.added for f in files)
        removed = sum(f.removed for f in files)
        error = next((f.error for f in files if f.error), None)
        await job.reporter.target_finished(
            key,
            status=TargetStatus.FAILED if status == "failed" else TargetStatus.SUCCEEDED,
            outcome=(Outcome.UNKNOWN if status == "failed" else Outcome.OK).value,
            result={
                **_device_data(item.device, item.config),
                "status": status,
                "diff_summary": f"+{added} -{removed}",
                "commit": written.commit if status == "changed" else None,
                "files": [_file_data(f) for f in files],
            },
            error=error,
        )
        index_rows.extend(
            {
                "device_id": item.device.id,
                "device_name": item.device.name,
                "repository_id": job.config.repository_id,
                "kind": f.key.rsplit(":", 1)[1],
                "path": f.path,
                "last_commit": written.commit if f.status == "changed" else None,
                "last_run_id": job.run_id,
            }
            for f in files
            if f.status != "failed"
        )
    await _record_index(job, index_rows)
    return counts, backed_up


async def _write_timestamps(
    job: JobContext[Config], device_ids: list[str]
) -> dict[str, Any] | None:
    """Set the configured custom field to today's date on every device backed up.

    A failure is reported in the result (and makes the outcome a warning); the backups
    themselves stand. Setting the same date again is harmless, so a re-delivery may repeat it.
    """
    field = job.config.timestamp_custom_field
    if field is None:
        return None
    today = datetime.now(UTC).date().isoformat()
    limit = asyncio.Semaphore(TIMESTAMP_CONCURRENCY)
    errors: list[str] = []

    async def stamp(device_id: str) -> None:
        async with limit:
            try:
                await job.services.nautobot.update_custom_fields(device_id, {field: today})
            except NautobotError as exc:
                errors.append(f"{device_id}: {exc.message}")

    await asyncio.gather(*(stamp(device_id) for device_id in device_ids))
    return {
        "custom_field": field,
        "value": today,
        "updated": len(device_ids) - len(errors),
        "failed": len(errors),
        "errors": errors[:10],
    }


async def _record_index(job: JobContext[Config], rows: list[dict[str, Any]]) -> None:
    async with job.services.sessions.begin() as session:
        for start in range(0, len(rows), INDEX_BATCH):
            statement = insert(DeviceBackupFile).values(rows[start : start + INDEX_BATCH])
            excluded = statement.excluded
            await session.execute(
                statement.on_conflict_do_update(
                    constraint="uq_device_backup_files_device_repo_kind",
                    set_={
                        "device_name": excluded.device_name,
                        "path": excluded.path,
                        "last_commit": func.coalesce(
                            excluded.last_commit, DeviceBackupFile.last_commit
                        ),
                        "last_run_id": excluded.last_run_id,
                        "updated_at": func.now(),
                    },
                )
            )


EXECUTOR = Executor(
    job_type="backup",
    label="Backup",
    description=(
        "Reads running (and startup) configurations over SSH with each platform's commands "
        "and commits the changed ones to a git repository, reporting a diff per device."
    ),
    config=Config,
    execute=execute,
    queue="devices",
    resolve_targets=resolve_targets,
)

"""backup end to end: configurations over SSH into git, change-only commits, re-delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from executors import get_executor
from executors.services import Services
from service.db.device_models import DeviceBackupFile
from service.db.models import JobRun, Outcome, RunStatus, TargetStatus, TriggeredBy
from service.errors import InvalidInput
from service.gitstore.git import GitIdentity, run_git
from service.queue import transport
from service.runs import lifecycle
from service.runs.requests import adhoc_request
from tests.conftest import make_settings
from tests.device_lab import (
    DeviceLab,
    add_credential,
    add_repository,
    eight_device_lab,
    load_run,
    run_device_job,
    target_rows,
)
from tests.workers import drain


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


async def git_log(checkout: Path, *paths: str) -> list[str]:
    _, out, _ = await run_git(
        ["log", "--format=%s", "HEAD", "--", *paths], cwd=checkout, identity=GitIdentity()
    )
    return out.decode().splitlines()


async def backup(
    services: Services, lab: DeviceLab, repository: int, credential: int, **extra: object
) -> JobRun:
    parameters = {"targets": {"all": True}, "repository_id": repository, **extra}
    return await run_device_job(services, lab, "backup", parameters, credential_id=credential)


async def test_backup_commits_only_changes_and_reports_diffs(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services, local_path="configs")
    checkout = device_lab.root / "git" / "configs"

    first = await backup(services, device_lab, repository, credential)
    assert first.status == RunStatus.COMPLETED, first.error
    assert first.outcome == Outcome.OK
    assert first.result is not None
    assert (first.result["changed"], first.result["unchanged"]) == (8, 0)
    assert await git_log(checkout) == [f"Backup of 8 device(s) by opsjobs run {first.id}"]
    rows = await target_rows(services, first.id)
    ios = rows["fra1-router-0000"].result
    assert ios is not None
    assert ios["status"] == "changed"
    assert [f["path"] for f in ios["files"]] == [
        "fra1/fra1-router-0000.running-config",
        "fra1/fra1-router-0000.startup-config",
    ]
    assert ios["files"][0]["created"] is True
    # Junos has no startup configuration: one file only, with the platform's own command.
    junos = rows["fra1-edge-0003"].result
    assert junos is not None
    assert [f["kind"] for f in junos["files"]] == ["running"]
    assert device_lab.fleet.device("fra1-edge-0003").commands[-1] == "show configuration"
    room = (checkout / "fra1-room1" / "fra1-spine-0002.running-config").read_text()
    assert room == device_lab.fleet.device("fra1-spine-0002").running_config

    second = await backup(services, device_lab, repository, credential)
    assert second.status == RunStatus.COMPLETED
    assert second.result is not None
    assert (second.result["changed"], second.result["unchanged"], second.result["commit"]) == (
        0,
        8,
        None,
    )
    assert len(await git_log(checkout)) == 1

    leaf = device_lab.fleet.device("ams1-leaf-0005")
    leaf.running_config = leaf.running_config.replace("uplink 3", "core link 3")
    third = await backup(services, device_lab, repository, credential)
    assert third.result is not None
    assert (third.result["changed"], third.result["unchanged"]) == (1, 7)
    changed = (await target_rows(services, third.id))["ams1-leaf-0005"].result
    assert changed is not None
    assert changed["status"] == "changed"
    assert changed["diff_summary"] == "+1 -1"
    running = changed["files"][0]
    assert "-" in running["diff"]
    assert "+" in running["diff"]
    assert "core link 3" in running["diff"]
    assert changed["files"][1]["status"] == "unchanged"
    assert await git_log(checkout, "ams1-room1/ams1-leaf-0005.running-config") == [
        f"Backup of 8 device(s) by opsjobs run {third.id}",
        f"Backup of 8 device(s) by opsjobs run {first.id}",
    ]


async def test_a_redelivered_backup_makes_no_second_commit(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services)
    run = await backup(services, device_lab, repository, credential)
    assert run.status == RunStatus.COMPLETED
    checkout = device_lab.root / "git" / f"repo-{repository}"
    assert len(await git_log(checkout)) == 1
    # The worker died after committing: the run goes back to pending and is delivered again.
    async with services.sessions.begin() as session:
        await session.execute(
            update(JobRun).where(JobRun.id == run.id).values(status=RunStatus.PENDING.value)
        )
    await transport.enqueue_dispatch(services.redis, run.id, device_lab.devices_queue)
    await drain(device_lab.settings, device_lab.devices_queue)
    again = await load_run(services, run.id)
    assert (again.status, again.attempt) == (RunStatus.COMPLETED, 2)
    assert again.result is not None
    assert (again.result["changed"], again.result["unchanged"], again.result["commit"]) == (
        0,
        8,
        None,
    )
    assert len(await git_log(checkout)) == 1


async def test_concurrent_backups_to_one_repository_serialise(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services)
    ids = [device.id for device in device_lab.inventory.devices]
    run_ids = []
    for half in (ids[:4], ids[4:]):
        request = adhoc_request(
            device_lab.settings,
            get_executor,
            job_type="backup",
            parameters={"targets": {"device_ids": half}, "repository_id": repository},
            triggered_by=TriggeredBy.API,
            executed_by="admin",
        )
        request = lifecycle.RunRequest(**{**request.__dict__, "credential_id": credential})
        run_ids.append(await lifecycle.enqueue_run(services.sessions, services.redis, request))
    # Two workers take one run each at the same time.
    await asyncio.gather(
        drain(device_lab.settings, device_lab.devices_queue),
        drain(device_lab.settings, device_lab.devices_queue),
    )
    finished = [await load_run(services, run_id) for run_id in run_ids]
    assert [run.status for run in finished] == [RunStatus.COMPLETED] * 2
    assert [run.result and run.result["changed"] for run in finished] == [4, 4]
    log = await git_log(device_lab.root / "git" / f"repo-{repository}")
    assert sorted(log) == sorted(f"Backup of 4 device(s) by opsjobs run {i}" for i in run_ids)


async def test_failed_devices_are_reported_and_the_rest_committed(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services)
    device_lab.fleet.device("ams1-spine-0006").refuse_logins = True
    device_lab.fleet.device("fra1-leaf-0001").outputs["show startup-config"] = (
        "% Invalid input detected at '^' marker.\n"
    )
    run = await backup(services, device_lab, repository, credential)
    assert run.status == RunStatus.COMPLETED
    assert run.outcome == Outcome.WARNING
    assert run.summary == "6 changed, 0 unchanged, 2 failed of 8 device(s)"
    rows = await target_rows(services, run.id)
    assert rows["ams1-spine-0006"].status == TargetStatus.FAILED
    assert rows["fra1-leaf-0001"].error == (
        "'show startup-config' refused: % Invalid input detected at '^' marker."
    )
    async with services.sessions() as session:
        indexed = await session.scalars(select(DeviceBackupFile.device_name).distinct())
        assert len(list(indexed)) == 6


async def test_each_device_is_announced_finished_once(
    services: Services, device_lab: DeviceLab
) -> None:
    """One ``target_finished`` event per device, with its final status: a failed fetch
    right away, a fetched device after the commit."""
    credential = await add_credential(services)
    repository = await add_repository(services)
    device_lab.fleet.device("ams1-spine-0006").refuse_logins = True
    run = await backup(services, device_lab, repository, credential)
    assert run.status == RunStatus.COMPLETED
    entries = await services.redis.xrange(services.keyspace.run_events(run.id))
    finished = [
        json.loads(fields[b"data"])
        for _, fields in entries
        if fields[b"type"] == b"target_finished"
    ]
    rows = await target_rows(services, run.id)
    assert len(rows) == 8
    assert sorted(event["key"] for event in finished) == sorted(row.key for row in rows.values())
    by_key = {event["key"]: event["status"] for event in finished}
    assert by_key == {row.key: row.status for row in rows.values()}
    assert by_key[rows["ams1-spine-0006"].key] == TargetStatus.FAILED
    assert list(by_key.values()).count(TargetStatus.SUCCEEDED) == 7
    started = [fields for _, fields in entries if fields[b"type"] == b"target_started"]
    assert len(started) == 8


async def test_all_devices_failing_fails_the_backup(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services, password="nope")
    repository = await add_repository(services)
    run = await backup(services, device_lab, repository, credential)
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert run.error.startswith("all 8 device(s) failed (first error: ")
    assert run.result is not None
    assert run.result["failed"] == 8
    assert len(await target_rows(services, run.id)) == 8


async def test_backed_up_devices_get_the_date_in_a_nautobot_custom_field(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services)
    device_lab.inventory.custom_fields.add("last_backup")
    device_lab.fleet.device("fra1-edge-0003").refuse_logins = True
    run = await backup(
        services, device_lab, repository, credential, timestamp_custom_field="last_backup"
    )
    assert run.status == RunStatus.COMPLETED
    today = datetime.now(UTC).date().isoformat()
    stamped = {d.name: d.custom_fields.get("last_backup") for d in device_lab.inventory.devices}
    assert stamped.pop("fra1-edge-0003") is None
    assert set(stamped.values()) == {today}
    assert run.result is not None
    assert run.result["timestamp_update"] == {
        "custom_field": "last_backup",
        "value": today,
        "updated": 7,
        "failed": 0,
        "errors": [],
    }

    # A field Nautobot does not know: the backups stand, the run says why with a warning.
    run = await backup(services, device_lab, repository, credential, timestamp_custom_field="nope")
    assert run.status == RunStatus.COMPLETED
    assert run.outcome == Outcome.WARNING
    assert run.result is not None
    update = run.result["timestamp_update"]
    assert (update["updated"], update["failed"]) == (0, 7)
    assert "Unknown field name 'nope'" in update["errors"][0]


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/{device.name}",
        "/etc/{device.name}.cfg",
        "{location.name}/../../{device.name}",
        "configs/.git/{device.name}",
        "{device.name}/../../x",
        "{no_such_field}/{device.name}",
        "all-devices.cfg",
    ],
)
def test_unsafe_path_templates_are_refused_when_saved(path: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        adhoc_request(
            make_settings(),
            get_executor,
            job_type="backup",
            parameters={"targets": {"all": True}, "repository_id": 1, "running_path": path},
            triggered_by=TriggeredBy.API,
            executed_by="admin",
        )
    assert raised.value.details[0]["loc"] == ["parameters", "running_path"]


async def test_path_traversal_is_a_422_at_the_api(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/job-runs",
        json={
            "job_type": "backup",
            "parameters": {
                "targets": {"all": True},
                "repository_id": 1,
                "startup_path": "../outside/{device.name}",
            },
        },
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["loc"] == ["parameters", "startup_path"]
    assert "'..' segment" in detail["msg"]

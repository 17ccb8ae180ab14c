"""backup to a remote behind authentication: the repository's credential, never leaked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from executors.services import Services
from lab.git_http import GitHttpLab
from service.db.models import RunStatus
from service.db.security_models import CredentialType
from service.gitstore.git import GitIdentity, run_git
from service.gitstore.remote_auth import basic_auth_environment, ssh_command
from service.settings import SshSettings
from tests.api.test_credentials import all_redis_bytes
from tests.device_lab import (
    DeviceLab,
    add_credential,
    add_repository,
    eight_device_lab,
    lab_api,
    run_device_job,
    sealed_credential,
    target_rows,
)

TOKEN = "git-token-5d1e8a90"


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


@pytest.fixture
async def git_lab(tmp_path: Path) -> AsyncIterator[GitHttpLab]:
    root = tmp_path / "remotes"
    (root / "configs.git").mkdir(parents=True)
    await run_git(
        ["init", "-q", "--bare", "-b", "main"], cwd=root / "configs.git", identity=GitIdentity()
    )
    async with GitHttpLab(root, username="backup-bot", secret=TOKEN) as lab:
        yield lab


async def add_token_credential(services: Services) -> int:
    row = sealed_credential(
        services, CredentialType.TOKEN, {"token": TOKEN}, name="git bot", username="backup-bot"
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def test_backup_pushes_with_the_repository_credential(
    services: Services,
    device_lab: DeviceLab,
    git_lab: GitHttpLab,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    devices = await add_credential(services)
    token = await add_token_credential(services)
    repository = await add_repository(
        services, url=git_lab.url("configs"), credential_id=token, local_path="remote-configs"
    )
    parameters = {"targets": {"all": True}, "repository_id": repository}
    run = await run_device_job(services, device_lab, "backup", parameters, credential_id=devices)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result is not None
    assert (run.result["changed"], run.result["pushed"]) == (8, True)
    _, log, _ = await run_git(
        ["log", "--format=%s", "main"], cwd=git_lab.root / "configs.git", identity=GitIdentity()
    )
    assert log.decode().splitlines() == [f"Backup of 8 device(s) by opsjobs run {run.id}"]

    secret = TOKEN.encode()
    assert secret not in await all_redis_bytes(services)
    rows = await target_rows(services, run.id)
    assert TOKEN not in repr([(r.result, r.error) for r in rows.values()] + [run.result])
    assert TOKEN not in caplog.text
    config = (device_lab.root / "git" / "remote-configs" / ".git" / "config").read_text()
    assert TOKEN not in config

    # The API reads the versions from the checkout: it never needs the remote's credential.
    device = device_lab.inventory.device("ams1-router-0004")
    async with lab_api(services, device_lab) as http:
        listed = await http.get(f"/api/devices/{device.id}/backups")
    assert listed.status_code == 200, listed.text
    versions = listed.json()["files"][0]["versions"]
    assert [v["message"] for v in versions] == [f"Backup of 8 device(s) by opsjobs run {run.id}"]


async def test_a_remote_refusing_the_login_fails_every_device_with_the_reason(
    services: Services, device_lab: DeviceLab, git_lab: GitHttpLab
) -> None:
    devices = await add_credential(services)
    repository = await add_repository(services, url=git_lab.url("configs"))
    parameters = {"targets": {"all": True}, "repository_id": repository}
    run = await run_device_job(services, device_lab, "backup", parameters, credential_id=devices)
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert "git ls-remote failed" in run.error
    assert git_lab.refused >= 1

    # A credential that cannot serve an HTTPS remote is said so, per device.
    ssh_login = await add_credential(services, username="other", password="pw")
    mismatched = await add_repository(
        services, name="mismatched", url=git_lab.url("configs"), credential_id=ssh_login
    )
    parameters["repository_id"] = mismatched
    run = await run_device_job(services, device_lab, "backup", parameters, credential_id=devices)
    assert run.status == RunStatus.FAILED
    rows = await target_rows(services, run.id)
    assert {row.error for row in rows.values()} == {
        "credential 'other-admin-True' (ssh_password) cannot authenticate to an HTTPS remote"
    }


def test_remote_environments_keep_secrets_off_the_command_line(tmp_path: Path) -> None:
    environment = basic_auth_environment("https://git.example.net/c.git", "bot", "s3cr3t")
    assert environment["GIT_CONFIG_KEY_0"] == "http.https://git.example.net/c.git.extraHeader"
    assert environment["GIT_CONFIG_VALUE_0"] == "Authorization: Basic Ym90OnMzY3IzdA=="
    command = ssh_command(tmp_path / "my key", SshSettings(known_hosts=tmp_path / "kh"))
    assert command.startswith(f"ssh -i '{tmp_path}/my key' -o IdentitiesOnly=yes -o BatchMode=yes")
    assert command.endswith("-o StrictHostKeyChecking=yes")

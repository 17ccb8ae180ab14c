"""A repository's secret stays with the repository: operator bob can neither point
operator alice's repository at his server nor back up through it, and option-like
remote URLs are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from executors.services import Services
from lab.git_http import GitHttpLab
from service.gitstore.git import GitIdentity, run_git
from tests.access.conftest import Team, created, device_credential, refusal
from tests.device_lab import DeviceLab
from tests.workers import drain

ALICE_TOKEN = "alice-git-token-8f3a"


async def _git_server(root: Path, username: str, secret: str) -> GitHttpLab:
    (root / "configs.git").mkdir(parents=True)
    await run_git(
        ["init", "-q", "--bare", "-b", "main"], cwd=root / "configs.git", identity=GitIdentity()
    )
    return GitHttpLab(root, username=username, secret=secret)


@pytest.fixture
async def alice_git(tmp_path: Path) -> AsyncIterator[GitHttpLab]:
    async with await _git_server(tmp_path / "alice", "backup-bot", ALICE_TOKEN) as server:
        yield server


@pytest.fixture
async def bob_git(tmp_path: Path) -> AsyncIterator[GitHttpLab]:
    async with await _git_server(tmp_path / "bob", "bob", "bob's own") as server:
        yield server


async def test_bob_can_neither_redirect_alices_repository_nor_back_up_through_it(
    services: Services,
    device_lab: DeviceLab,
    team: Team,
    alice_git: GitHttpLab,
    bob_git: GitHttpLab,
) -> None:
    token = await created(
        team.alice,
        "/api/credentials",
        {
            "name": "alice-git",
            "type": "token",
            "username": "backup-bot",
            "token": ALICE_TOKEN,
            "is_global": False,
        },
    )
    repository = await created(
        team.alice,
        "/api/git-repositories",
        {
            "name": "alice-configs",
            "url": alice_git.url("configs"),
            "credential_id": token,
            "local_path": "alice",
        },
    )
    moved = await team.bob.patch(
        f"/api/git-repositories/{repository}", json={"url": bob_git.url("configs")}
    )
    assert refusal(moved) == (403, [["body", "url"]])
    stored = (await team.admin.get(f"/api/git-repositories/{repository}")).json()
    assert stored["url"] == alice_git.url("configs")

    devices = await device_credential(team.admin, "devices", is_global=True)
    parameters = {"targets": {"all": True}, "repository_id": repository, "credential_id": devices}
    backup = await team.bob.post(
        "/api/job-runs", json={"job_type": "backup", "parameters": parameters}
    )
    assert refusal(backup) == (403, [["parameters", "repository_id"]])
    await drain(device_lab.settings, device_lab.devices_queue)
    assert (alice_git.requests, bob_git.requests) == (0, 0)

    # Alice backs up to her own server; bob's still hears nothing, nor sees her run.
    mine = await created(
        team.alice, "/api/job-runs", {"job_type": "backup", "parameters": parameters}
    )
    await drain(device_lab.settings, device_lab.devices_queue)
    run = (await team.alice.get(f"/api/job-runs/{mine}")).json()
    assert (run["status"], run["private_to"]) == ("completed", "alice"), run["error"]
    assert alice_git.requests > 0
    assert bob_git.requests == 0
    assert (await team.bob.get(f"/api/job-runs/{mine}")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "ssh://-oProxyCommand=touch%20pwned/x",
        "ssh://%2DoProxyCommand=touch%20pwned/x",
        "ssh://-l@host/x.git",
        "https://git.example.net/-u/x.git",
        "-oProxyCommand=x@host:x.git",
        "git@-host:x.git",
    ],
)
async def test_option_like_remote_urls_are_refused(client: httpx.AsyncClient, url: str) -> None:
    refused = await client.post("/api/git-repositories", json={"name": "r", "url": url})
    assert refusal(refused) == (422, [["body", "url"]])
    repository = await created(client, "/api/git-repositories", {"name": "fine"})
    patched = await client.patch(f"/api/git-repositories/{repository}", json={"url": url})
    assert refusal(patched) == (422, [["body", "url"]])

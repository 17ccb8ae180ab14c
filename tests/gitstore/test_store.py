from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType

import pytest
from redis.asyncio import Redis

from service.errors import NotFound
from service.gitstore.git import GitIdentity, run_git
from service.gitstore.locks import RepositoryBusy, RepositoryLocks
from service.gitstore.paths import (
    DEFAULT_RUNNING_PATH,
    InvalidPath,
    render_device_path,
    render_path_template,
    validate_path_template,
)
from service.gitstore.store import FileWrite, GitConfigStore, RepositorySpec
from service.inventory.device import Device

PREFIX = "opsjobs-test:"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/14")
    yield client
    keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def locks(redis: Redis) -> RepositoryLocks:
    return RepositoryLocks(redis, prefix=PREFIX, expire=5, wait=10)


async def git(cwd: Path, *args: str) -> str:
    _, out, _ = await run_git(args, cwd=cwd, identity=GitIdentity())
    return out.decode()


async def bare_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    remote.mkdir()
    await git(remote, "init", "-q", "--bare", "-b", "main")
    return remote


def store_for(
    locks: RepositoryLocks, path: Path, url: Path | str | None = None, key: str = "repo"
) -> GitConfigStore:
    return GitConfigStore(RepositorySpec(key=key, path=path, url=str(url) if url else None), locks)


CONFIG = "hostname r1\ninterface Gi0/1\n description uplink\n!\nend\n"


async def test_writes_commit_only_changes_with_diffs(
    tmp_path: Path, locks: RepositoryLocks
) -> None:
    store = store_for(locks, tmp_path / "configs")
    first = await store.write_files(
        [FileWrite("r1", "fra1/r1.cfg", CONFIG), FileWrite("r2", "fra1/r2.cfg", "hostname r2\n")],
        message="backup run 41",
    )
    assert first.error is None
    assert [(f.key, f.status, f.created) for f in first.files] == [
        ("r1", "changed", True),
        ("r2", "changed", True),
    ]
    assert first.files[0].added == 5
    assert first.commit is not None
    assert not first.pushed
    assert (tmp_path / "configs/fra1/r1.cfg").read_text() == CONFIG

    again = await store.write_files(
        [FileWrite("r1", "fra1/r1.cfg", CONFIG), FileWrite("r2", "fra1/r2.cfg", "hostname r2\n")],
        message="backup run 42",
    )
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert again.commit is None
    assert (await git(tmp_path / "configs", "rev-list", "--count", "HEAD")).strip() == "1"

    edited = CONFIG.replace("uplink", "core uplink")
    third = await store.write_files(
        [FileWrite("r1", "fra1/r1.cfg", edited), FileWrite("r2", "fra1/r2.cfg", "hostname r2\n")],
        message="backup run 43",
    )
    r1, r2 = third.files
    assert (r1.status, r2.status) == ("changed", "unchanged")
    assert (r1.added, r1.removed, r1.created) == (1, 1, False)
    assert "- description uplink\n+ description core uplink\n" in r1.diff
    assert r1.diff.startswith("--- a/fra1/r1.cfg\n+++ b/fra1/r1.cfg\n")
    log = await git(tmp_path / "configs", "log", "--format=%s", "--name-only", "-n1")
    assert log.split() == ["backup", "run", "43", "fra1/r1.cfg"]


async def test_only_written_files_are_committed(tmp_path: Path, locks: RepositoryLocks) -> None:
    store = store_for(locks, tmp_path / "configs")
    await store.write_files([FileWrite("r1", "r1.cfg", "a\n")], message="run 1")
    # Someone edits another tracked file and stages a stray one by hand.
    (tmp_path / "configs/notes.txt").write_text("hand-made\n")
    await git(tmp_path / "configs", "add", "notes.txt")
    outcome = await store.write_files([FileWrite("r1", "r1.cfg", "b\n")], message="run 2")
    assert outcome.warnings == ("the checkout has 1 uncommitted change(s)",)
    files = await git(tmp_path / "configs", "show", "--name-only", "--format=", "HEAD")
    assert files.split() == ["r1.cfg"]


async def test_push_pull_with_a_remote_and_a_second_checkout(
    tmp_path: Path, locks: RepositoryLocks
) -> None:
    remote = await bare_remote(tmp_path)
    host_a = store_for(locks, tmp_path / "a", remote)
    outcome = await host_a.write_files([FileWrite("r1", "r1.cfg", CONFIG)], message="run 1")
    assert outcome.pushed
    assert (await git(remote, "rev-parse", "main")).strip() == outcome.commit

    host_b = store_for(locks, tmp_path / "b", remote)
    same = await host_b.write_files([FileWrite("r1", "r1.cfg", CONFIG)], message="run 2")
    assert same.files[0].status == "unchanged"  # host b pulled host a's version first
    newer = await host_b.write_files([FileWrite("r1", "r1.cfg", "hostname r1b\n")], message="run 3")
    assert newer.files[0].status == "changed"

    versions = await host_a.history("r1.cfg")
    assert [v.message for v in versions] == ["run 3", "run 1"]
    assert versions[0].commit == newer.commit
    assert versions[0].author == "opsjobs"
    assert await host_a.read_version("r1.cfg", versions[1].commit) == CONFIG
    diff = await host_a.diff_versions("r1.cfg", versions[1].commit, versions[0].commit)
    assert "-hostname r1\n" in diff
    assert "+hostname r1b\n" in diff
    with pytest.raises(NotFound):
        await host_a.read_version("r1.cfg", "0" * 40)
    with pytest.raises(NotFound):
        await host_a.read_version("r1.cfg", "HEAD; rm -rf /")


async def test_concurrent_writers_in_one_process_serialise(
    tmp_path: Path, locks: RepositoryLocks
) -> None:
    remote = await bare_remote(tmp_path)
    store = store_for(locks, tmp_path / "checkout", remote)
    outcomes = await asyncio.gather(
        *(
            store.write_files(
                [FileWrite(f"r{i}", f"r{i}.cfg", f"hostname r{i}\n")], message=f"run {i}"
            )
            for i in range(6)
        )
    )
    assert all(o.error is None and o.pushed for o in outcomes)
    assert (await git(remote, "rev-list", "--count", "main")).strip() == "6"


async def test_writers_in_different_processes_serialise_through_redis(
    tmp_path: Path, redis: Redis
) -> None:
    remote = await bare_remote(tmp_path)
    key = f"repo-{uuid.uuid4()}"
    # Two RepositoryLocks stand for two worker processes: only Redis is shared.
    stores = [
        store_for(
            RepositoryLocks(redis, prefix=PREFIX, expire=30), tmp_path / f"host{i}", remote, key
        )
        for i in range(2)
    ]
    outcomes = await asyncio.gather(
        *(
            stores[i % 2].write_files(
                [FileWrite(f"r{i}", f"r{i}.cfg", f"hostname r{i}\n")], message=f"run {i}"
            )
            for i in range(6)
        )
    )
    # Unserialised, pushes from the two checkouts would be rejected as non-fast-forward.
    assert [o.error for o in outcomes] == [None] * 6
    assert (await git(remote, "rev-list", "--count", "main")).strip() == "6"
    assert await redis.exists(RepositoryLocks(redis, prefix=PREFIX).redis_key(key)) == 0


async def test_a_held_repository_makes_other_processes_wait_then_give_up(redis: Redis) -> None:
    key = f"repo-{uuid.uuid4()}"
    holder = RepositoryLocks(redis, prefix=PREFIX, expire=0.3)
    other = RepositoryLocks(redis, prefix=PREFIX, expire=5, wait=0.5)
    async with holder.hold(key):
        # Held past its expiry: the keeper extends it, so the other process still waits.
        with pytest.raises(RepositoryBusy):
            async with other.hold(key):
                pass
    async with other.hold(key):
        assert await redis.exists(other.redis_key(key)) == 1


async def test_repository_failures_come_back_as_outcome_errors(
    tmp_path: Path, locks: RepositoryLocks
) -> None:
    missing = store_for(locks, tmp_path / "a", tmp_path / "no-such-remote.git")
    outcome = await missing.write_files([FileWrite("r1", "r1.cfg", CONFIG)], message="run 1")
    assert outcome.error is not None
    assert "git ls-remote failed" in outcome.error
    assert [(f.status, f.error) for f in outcome.files] == [("failed", outcome.error)]

    # A remote that refuses the push (its branch is checked out): the diff is kept and the
    # local commit is rolled back, so the next attempt starts from the remote's state.
    refusing = tmp_path / "refusing"
    refusing.mkdir()
    await git(refusing, "init", "-q", "-b", "main")
    (refusing / "r1.cfg").write_text("hostname old\n")
    await git(refusing, "add", "r1.cfg")
    await git(refusing, "commit", "-q", "-m", "seed")
    store = store_for(locks, tmp_path / "b", refusing)
    failed = await store.write_files([FileWrite("r1", "r1.cfg", CONFIG)], message="run 2")
    assert failed.error is not None
    assert "git push failed" in failed.error
    [result] = failed.files
    assert (result.status, result.removed, result.added) == ("failed", 1, 5)
    assert (await git(tmp_path / "b", "log", "--format=%s")).split() == ["seed"]
    assert (tmp_path / "b/r1.cfg").read_text() == "hostname old\n"


@pytest.mark.parametrize(
    "template",
    [
        "../{device.name}.cfg",
        "/etc/{device.name}.cfg",
        "backups/../../{device.name}.cfg",
        "{location.name}/../../../x/{device.name}",
        "backups//{device.name}",
        "./{device.name}",
        ".git/hooks/{device.name}",
        "a\\b/{device.name}",
        "backups/{device.name",
        "backups/device.name}",
        "backups/static.cfg",
        "{password}/{device.name}",
        "{device.name/../x}",
    ],
)
def test_unsafe_path_templates_are_rejected(template: str) -> None:
    with pytest.raises(InvalidPath):
        validate_path_template(template)


def lab_device(**changes: object) -> Device:
    values: dict[str, object] = {
        "id": "d1",
        "name": "fra1-rtr-01",
        "location_path": ("Europe", "fra1"),
        "platform": "Cisco IOS",
        "network_driver": "cisco_ios",
        "custom_fields": MappingProxyType({"environment": "production"}),
    }
    values.update(changes)
    return Device(**values)  # type: ignore[arg-type]


def test_path_templates_render_from_the_device() -> None:
    device = lab_device()
    assert render_device_path(DEFAULT_RUNNING_PATH, device) == "fra1/fra1-rtr-01.running-config"
    assert render_device_path("{location.parent.name}/{name}.cfg", device) == (
        "Europe/fra1-rtr-01.cfg"
    )
    assert (
        render_device_path(
            "{custom_fields.environment}/{platform.network_driver}/{device_name}.cfg", device
        )
        == "production/cisco_ios/fra1-rtr-01.cfg"
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (lab_device(name="../../etc/passwd"), None),
        (lab_device(name=".."), "unusable value"),
        (lab_device(location_path=()), "has no value"),
    ],
)
def test_device_values_cannot_escape_the_template(device: Device, message: str | None) -> None:
    if message is None:
        assert render_device_path("{location.name}/{device.name}", device) == (
            "fra1/.._.._etc_passwd"
        )
    else:
        with pytest.raises(InvalidPath, match=message):
            render_device_path("{location.name}/{device.name}", device)


def test_render_rejects_templates_that_skipped_validation() -> None:
    with pytest.raises(InvalidPath):
        render_path_template("../{name}", {"name": "x"})


async def test_unsafe_paths_fail_only_their_file(tmp_path: Path, locks: RepositoryLocks) -> None:
    store = store_for(locks, tmp_path / "configs")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "configs").mkdir()
    await git(tmp_path / "configs", "init", "-q", "-b", "main")
    (tmp_path / "configs/link").symlink_to(outside)
    outcome = await store.write_files(
        [
            FileWrite("ok", "ok.cfg", "fine\n"),
            FileWrite("up", "../evil.cfg", "x\n"),
            FileWrite("git", ".git/config", "x\n"),
            FileWrite("link", "link/evil.cfg", "x\n"),
            FileWrite("d1", "same.cfg", "1\n"),
            FileWrite("d2", "same.cfg", "2\n"),
        ],
        message="run 1",
    )
    statuses = {f.key: f.status for f in outcome.files}
    assert statuses == {
        "ok": "changed",
        "up": "failed",
        "git": "failed",
        "link": "failed",
        "d1": "failed",
        "d2": "failed",
    }
    assert not (tmp_path / "evil.cfg").exists()
    assert list(outside.iterdir()) == []
    assert (await git(tmp_path / "configs", "show", "--name-only", "--format=")).split() == [
        "ok.cfg"
    ]

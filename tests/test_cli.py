"""The server verbs of ``opsjobs`` and ``run --direct``: one-line errors, live runs, exit
codes. The client verbs are tested against a running service in ``tests/client``."""

from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy import func, select

from executors.services import Services
from service.db.models import JobRun
from tests.conftest import TEST_DATABASE_URL, TEST_KEY_FILE, TEST_REDIS_URL
from tests.device_lab import add_credential
from tests.workers import running_worker


async def opsjobs(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def cli_env(services: Services) -> dict[str, str]:
    return {
        "OPSJOBS_DATABASE__URL": TEST_DATABASE_URL,
        "OPSJOBS_REDIS__URL": TEST_REDIS_URL,
        "OPSJOBS_REDIS__PREFIX": services.settings.redis.prefix,
        "OPSJOBS_SECRETS__KEY_FILE": str(TEST_KEY_FILE),
        "OPSJOBS_QUEUES__DEFAULT": services.settings.queues.default,
    }


async def test_bad_setting_is_one_line_naming_the_key() -> None:
    code, _, err = await opsjobs("migrate", env={"OPSJOBS_WORKER__MAX_JOBS": "zero"})
    assert code == 2
    assert err.strip().splitlines() == [
        "opsjobs: invalid setting worker.max_jobs: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


async def test_unreachable_database_names_the_url() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/opsjobs"
    code, _, err = await opsjobs("migrate", env={"OPSJOBS_DATABASE__URL": url})
    assert code == 3
    assert "Traceback" not in err
    assert "127.0.0.1:1/opsjobs" in err
    assert "OPSJOBS_DATABASE__URL" in err


async def test_unreachable_redis_names_the_url(services: Services) -> None:
    env = {**cli_env(services), "OPSJOBS_REDIS__URL": "redis://127.0.0.1:1/0"}
    code, _, err = await opsjobs("worker", "--queue", "x", env=env)
    assert code == 3
    assert "Traceback" not in err
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in err


async def test_run_follows_progress_and_prints_result(services: Services) -> None:
    async with running_worker(services.settings):
        code, out, err = await opsjobs(
            "run",
            "--direct",
            "diag.progress",
            "-p",
            "steps=3",
            "-p",
            "delay=0.05",
            env=cli_env(services),
        )
    assert code == 0, err
    assert " INFO " not in err
    assert '"steps_done": 3' in out
    assert "completed (ok): 3 steps done" in err


async def test_run_of_failing_job_exits_non_zero(services: Services) -> None:
    async with running_worker(services.settings):
        code, out, err = await opsjobs(
            "run", "--direct", "diag.fail", "-p", "message=nope", env=cli_env(services)
        )
    assert code == 1
    assert "failed" in err
    assert '"partial": true' in out


async def test_run_with_invalid_parameter_names_it(services: Services) -> None:
    code, _, err = await opsjobs(
        "run", "--direct", "diag.progress", "-p", "steps=-1", env=cli_env(services)
    )
    assert code == 2
    assert "parameters.steps" in err
    assert "Traceback" not in err


async def test_run_refuses_a_private_resource_of_someone_else(services: Services) -> None:
    """``opsjobs run --direct`` runs as the OS user: another user's private credential
    does not exist for it, and nothing is queued."""
    private = await add_credential(services, owner="alice", is_global=False)
    code, _, err = await opsjobs(
        "run",
        "--direct",
        "run_commands",
        "-p",
        'targets={"all": true}',
        "-p",
        "command_template_id=1",
        "-p",
        f"credential_id={private}",
        env=cli_env(services),
    )
    assert code == 2
    assert f"parameters.credential_id: credential {private} does not exist" in err
    assert "Traceback" not in err
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(JobRun)) == 0


async def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    code, out, _ = await opsjobs("--version")
    assert (code, out.strip()) == (0, f"opsjobs {version('opsjobs')}")


async def test_lab_refuses_to_start_when_it_is_off() -> None:
    code, _, err = await opsjobs("lab", env={"OPSJOBS_LAB__ENABLED": "false"})
    assert code == 2
    assert err.strip() == (
        "opsjobs: the lab is off; set [lab] enabled = true or OPSJOBS_LAB__ENABLED=true"
    )


def test_token_roles_are_the_roles() -> None:
    from service.cli import ROLES
    from service.db.security_models import Role

    assert tuple(role.value for role in Role) == ROLES

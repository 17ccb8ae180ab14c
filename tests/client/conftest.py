"""One running opsjobs (API, workers, scheduler, lab) that every CLI test drives.

The CLI runs as a subprocess, as an operator would run it, against ``opsjobs up`` on free
ports with its own database and a private Redis.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.console.stack import REPO, Stack, opsjobs_up

CLI_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class CliStack:
    stack: Stack
    config_home: Path
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.stack.url

    def api(self, user: str = "admin") -> httpx.AsyncClient:
        return self.stack.api(self.tokens[user])

    async def opsjobs(
        self,
        *args: str,
        user: str | None = "admin",
        env: dict[str, str] | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> Result:
        """``opsjobs ARGS`` as ``user`` (OPSJOBS_URL/OPSJOBS_TOKEN); None: no login at all."""
        base = {**self.stack.env, "XDG_CONFIG_HOME": str(self.config_home)}
        base.pop("OPSJOBS_URL", None)
        base.pop("OPSJOBS_TOKEN", None)
        base.pop("NO_COLOR", None)
        if user is not None:
            base |= {"OPSJOBS_URL": self.url, "OPSJOBS_TOKEN": self.tokens[user]}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            *args,
            env={**base, **(env or {})},
            cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout if stdout is not None else asyncio.subprocess.PIPE,
            stderr=stderr if stderr is not None else asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
        assert process.returncode is not None
        return Result(process.returncode, (out or b"").decode(), (err or b"").decode())


async def _token(stack: Stack, name: str, role: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "token",
        "create",
        "--name",
        name,
        "--role",
        role,
        env=stack.env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


@pytest.fixture(scope="package")
async def cli(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CliStack]:
    directory = tmp_path_factory.mktemp("cli-stack")
    async with opsjobs_up(directory, database="cli") as stack:
        tokens = {"admin": stack.admin_token}
        for user, role in (("alice", "operator"), ("bob", "operator"), ("victor", "viewer")):
            tokens[user] = await _token(stack, user, role)
        config_home = directory / "config"
        config_home.mkdir()
        yield CliStack(stack=stack, config_home=config_home, tokens=tokens)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty config home of one test (the login file goes under it)."""
    os.makedirs(tmp_path / "config", exist_ok=True)
    return tmp_path / "config"

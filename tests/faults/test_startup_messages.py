"""Start-up against an unreachable database says so in at most 3 lines, without alembic's
chatter (shown by ``opsjobs migrate -v``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


def _opsjobs(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPSJOBS_DATABASE__URL": database_url,
        "OPSJOBS_REDIS__URL": "redis://127.0.0.1:6379/13",
        "OPSJOBS_SECRETS__KEY_FILE": str(tmp_path / "keys.json"),
    }
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command", [["migrate"], ["api"], ["worker", "--queue", "default"]], ids=" ".join
)
def test_an_unreachable_database_is_at_most_three_lines(tmp_path: Path, command: list[str]) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    result = _opsjobs(tmp_path, url, *command)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 3, result
    assert len(lines) <= 3, f"{len(lines)} lines: {lines}"
    assert "alembic" not in result.stderr
    assert "PostgreSQL" in result.stderr or "database" in result.stderr


def test_migrate_verbose_shows_the_migration_steps(tmp_path: Path) -> None:
    base = os.environ.get(
        "OPSJOBS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/opsjobs_test"
    )
    url = base.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1] + "_dev"
    verbose = _opsjobs(tmp_path, url, "migrate", "-v")
    quiet = _opsjobs(tmp_path, url, "migrate")  # the key file exists by now
    assert quiet.returncode == verbose.returncode == 0, (quiet.stderr, verbose.stderr)
    assert quiet.stderr.strip().splitlines() == ["database is at the newest schema"]
    assert "alembic.runtime.migration" in verbose.stderr

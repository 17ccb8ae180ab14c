"""Settings: settings.toml, overridden by OPSJOBS_<SECTION>__<KEY>; bad values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings
from service.worker.crons import cron_seconds


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('[worker]\nmax_jobs = 7\n[queues]\ndevices = "dev"\n')
    monkeypatch.setenv("OPSJOBS_SETTINGS_FILE", str(settings_file))
    assert Settings().worker.max_jobs == 7
    assert Settings().queues.devices == "dev"
    monkeypatch.setenv("OPSJOBS_WORKER__MAX_JOBS", "9")
    assert Settings().worker.max_jobs == 9


def test_the_shipped_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSJOBS_SETTINGS_FILE", str(Path(__file__).parent.parent / "settings.toml"))
    settings = Settings()
    assert settings.queues.names() == ["default", "devices", "scheduler"]


@pytest.mark.parametrize(
    ("env", "value", "where"),
    [
        ("OPSJOBS_DATABASE__URL", "mysql://x", ("database", "url")),
        ("OPSJOBS_REDIS__URL", "http://x", ("redis", "url")),
        ("OPSJOBS_WORKER__POLL_DELAY", "0", ("worker", "poll_delay")),
        ("OPSJOBS_REDIS__PREFIX", "", ("redis", "prefix")),
        ("OPSJOBS_REDIS__PREFIX", "ops*", ("redis", "prefix")),
        ("OPSJOBS_NAUTOBOT__URL", "nautobot.example", ("nautobot", "url")),
    ],
)
def test_bad_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, where: tuple[str, str]
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert raised.value.errors()[0]["loc"] == where


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [(10, set(range(0, 60, 10))), (7, set(range(0, 60, 6))), (60, {0}), (1, set(range(60)))],
)
def test_cron_seconds_divide_the_minute(interval: float, seconds: set[int]) -> None:
    assert cron_seconds(interval) == seconds


def test_the_labs_nautobot_follows_the_labs_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[nautobot] url = "lab"`` (the shipped file's) moves with ``lab.nautobot_port``."""
    monkeypatch.setenv("OPSJOBS_SETTINGS_FILE", str(Path(__file__).parent.parent / "settings.toml"))
    monkeypatch.delenv("OPSJOBS_NAUTOBOT__URL", raising=False)
    monkeypatch.setenv("OPSJOBS_LAB__ENABLED", "true")
    monkeypatch.setenv("OPSJOBS_LAB__NAUTOBOT_PORT", "18082")
    assert Settings().nautobot.url == "http://127.0.0.1:18082"
    monkeypatch.setenv("OPSJOBS_LAB__ENABLED", "false")
    assert Settings().nautobot.url == ""
    monkeypatch.setenv("OPSJOBS_NAUTOBOT__URL", "https://nautobot.example/")
    assert Settings().nautobot.url == "https://nautobot.example"


def test_the_redis_prefix_defaults_to_opsjobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSJOBS_SETTINGS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.delenv("OPSJOBS_REDIS__PREFIX", raising=False)
    assert Settings().redis.prefix == "opsjobs:"
    monkeypatch.setenv("OPSJOBS_REDIS__PREFIX", "site-b:")
    assert Settings().redis.prefix == "site-b:"


def test_alert_links_follow_the_api_port_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSJOBS_SETTINGS_FILE", str(Path(__file__).parent.parent / "settings.toml"))
    monkeypatch.setenv("OPSJOBS_API__PORT", "8010")
    assert Settings().api.public_url == "http://127.0.0.1:8010"
    monkeypatch.setenv("OPSJOBS_API__HOST", "0.0.0.0")
    assert Settings().api.public_url == "http://127.0.0.1:8010"
    monkeypatch.setenv("OPSJOBS_API__PUBLIC_URL", "https://ops.example.net/")
    assert Settings().api.public_url == "https://ops.example.net"

"""Settings: ``settings.toml`` overridden by the environment (``OPSJOBS_<SECTION>__<KEY>``).

One :class:`Settings` object is built by an entry point (``service/cli.py``, the test
fixtures) and passed in; nothing reads settings from a global.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from service.keyspace import DEFAULT_PREFIX, check_prefix

SETTINGS_FILE_ENV = "OPSJOBS_SETTINGS_FILE"
DEFAULT_SETTINGS_FILE = Path("settings.toml")

Seconds = Annotated[float, Field(gt=0)]


class DatabaseSettings(BaseModel):
    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/opsjobs"
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)

    @field_validator("url")
    @classmethod
    def _asyncpg_only(cls, value: str) -> str:
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must start with postgresql+asyncpg://")
        return value


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    # Every key opsjobs writes starts with it (arq's own keys after arq's "arq:job:" and
    # the like), so installations sharing a Redis database never take each other's jobs.
    prefix: str = DEFAULT_PREFIX

    @field_validator("prefix")
    @classmethod
    def _usable_prefix(cls, value: str) -> str:
        return check_prefix(value)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class QueueSettings(BaseModel):
    default: str = "default"
    devices: str = "devices"
    scheduler: str = "scheduler"

    def names(self) -> list[str]:
        """Every distinct queue name, in a stable order."""
        return list(dict.fromkeys([self.default, self.devices, self.scheduler]))


class WorkerSettings(BaseModel):
    max_jobs: int = Field(default=20, ge=1)
    poll_delay: Seconds = 0.1
    default_timeout: Seconds = 3600
    max_timeout: Seconds = 6 * 3600
    heartbeat_interval: Seconds = 5
    shutdown_grace: float = Field(default=10, ge=0)
    progress_min_interval: float = Field(default=0.5, ge=0)


class ReaperSettings(BaseModel):
    lost_after: Seconds = 30
    interval: Seconds = 10


class SchedulerSettings(BaseModel):
    tick_seconds: Seconds = 1
    batch: int = Field(default=100, ge=1, le=10_000)
    # At most 60 s, the shortest period between two fires, so at most one fire is on time.
    misfire_grace: float = Field(default=30, ge=0, le=60)
    max_missed_recorded: int = Field(default=100, ge=1, le=10_000)


class RetentionSettings(BaseModel):
    days: float = Field(default=30, gt=0)
    batch: int = Field(default=1000, ge=1)
    interval: Seconds = 3600


class WorkerHealthSettings(BaseModel):
    interval: Seconds = 5
    ttl: Seconds = 20


class LabSettings(BaseModel):
    # Off unless a settings file turns it on: the repository's settings.toml does, for
    # `make run`; an installation elsewhere runs without simulators.
    enabled: bool = False
    host: str = "127.0.0.1"
    nifi_port: int = Field(default=8081, ge=0, le=65535)
    nautobot_port: int = Field(default=8082, ge=0, le=65535)
    # The webhook receiver (GET /received lists what arrived) and the SMTP sink.
    alerts_port: int = Field(default=8083, ge=0, le=65535)
    smtp_port: int = Field(default=8025, ge=0, le=65535)
    device_count: int = Field(default=24, ge=1, le=5000)
    state_dir: Path = Path("var/lab")


class SecretsSettings(BaseModel):
    key_file: Path = Path("var/opsjobs-keys.json")


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # /metrics without a token (false: it needs settings.queues:read like /api/queues).
    metrics_open: bool = True
    # A comment line on an idle run-event stream keeps proxies from closing it.
    events_heartbeat: Seconds = 15
    # Where people reach the console: alert messages link to runs under it. Empty: the
    # API's own address (http://<host>:<port>, loopback when it listens on every address).
    public_url: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def own_url(self) -> str:
        """``http://<host>:<port>`` of the API as this host reaches it."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


class NotifySettings(BaseModel):
    # Seconds between passes of the notification cron (outbox, schedule health, delivery).
    interval: Seconds = 1
    # A failed delivery is retried after retry_base × 2^(attempt - 1) seconds, at most
    # retry_max apart, until give_up_after seconds after the event; then it is failed.
    retry_base: Seconds = 2
    retry_max: Seconds = 300
    give_up_after: Seconds = 24 * 3600
    # Seconds one send may take (HTTP request or SMTP conversation).
    timeout: Seconds = 10
    # Run facts and events handled per pass; deliveries sent at once per pass.
    batch: int = Field(default=500, ge=1, le=10_000)
    max_in_flight: int = Field(default=20, ge=1, le=1000)
    # Targets listed by name in one message; the rest are counted.
    max_listed_targets: int = Field(default=20, ge=1, le=1000)


class LeaseSettings(BaseModel):
    # Seconds a concurrency slot outlives its holder's last renewal: a dead worker's slots
    # free within this; a live holder renews every third of it.
    ttl: Seconds = 30
    # Seconds between tries of a waiter for a busy slot.
    poll: Seconds = 0.2
    per_device: int = Field(default=1, ge=1, le=1000)
    per_nifi_cluster: int = Field(default=4, ge=1, le=1000)


class EventSettings(BaseModel):
    stream_maxlen: int = Field(default=2000, ge=10)
    stream_ttl: Seconds = 24 * 3600


# ``[nautobot] url`` naming the lab's Nautobot simulator, wherever ``lab.nautobot_port`` puts it.
LAB_NAUTOBOT = "lab"


class NautobotSettings(BaseModel):
    # Empty: Nautobot is not configured; device jobs fail with that reason. "lab": the lab's
    # simulator (http://<lab.host>:<lab.nautobot_port>) while the lab is on, else empty.
    url: str = ""
    token: str = Field(default="", repr=False)
    timeout: Seconds = 30
    page_size: int = Field(default=500, ge=1, le=10_000)
    verify_tls: bool = True
    cache_ttl: Seconds = 1800
    # 0 disables the cache_devices cron.
    cache_interval: float = Field(default=900, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and value != LAB_NAUTOBOT and not value.startswith(("http://", "https://")):
            raise ValueError(f'must start with http:// or https://, or be "{LAB_NAUTOBOT}"')
        return value.rstrip("/")


class SshSettings(BaseModel):
    connect_timeout: Seconds = 30
    command_timeout: Seconds = 60
    max_sessions: int = Field(default=100, ge=1, le=10_000)
    max_sessions_per_site: int = Field(default=20, ge=1, le=10_000)
    known_hosts: Path = Path("var/known_hosts")
    accept_new: bool = False
    port_field: str = Field(default="ssh_port", min_length=1, max_length=64)
    default_port: int = Field(default=22, ge=1, le=65535)


class GitSettings(BaseModel):
    checkout_root: Path = Path("var/git")
    timeout: Seconds = 120
    lock_wait: Seconds = 600
    allow_file_urls: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSJOBS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    queues: QueueSettings = QueueSettings()
    worker: WorkerSettings = WorkerSettings()
    reaper: ReaperSettings = ReaperSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    retention: RetentionSettings = RetentionSettings()
    worker_health: WorkerHealthSettings = WorkerHealthSettings()
    api: ApiSettings = ApiSettings()
    secrets: SecretsSettings = SecretsSettings()
    lab: LabSettings = LabSettings()
    events: EventSettings = EventSettings()
    nautobot: NautobotSettings = NautobotSettings()
    ssh: SshSettings = SshSettings()
    git: GitSettings = GitSettings()
    notify: NotifySettings = NotifySettings()
    leases: LeaseSettings = LeaseSettings()

    @model_validator(mode="after")
    def _derived_urls(self) -> Settings:
        """Resolve ``nautobot.url = "lab"`` and an empty ``api.public_url`` from the ports
        they follow, so one setting moves a port everywhere it is used."""
        # The settings are frozen once built; this is still building them.
        if not self.api.public_url:
            api = self.api.model_copy(update={"public_url": self.api.own_url()})
            object.__setattr__(self, "api", api)
        if self.nautobot.url == LAB_NAUTOBOT:
            host = f"[{self.lab.host}]" if ":" in self.lab.host else self.lab.host
            url = f"http://{host}:{self.lab.nautobot_port}" if self.lab.enabled else ""
            object.__setattr__(self, "nautobot", self.nautobot.model_copy(update={"url": url}))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(SETTINGS_FILE_ENV, DEFAULT_SETTINGS_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def load_settings() -> Settings:
    """Build the settings from ``settings.toml`` and the environment."""
    return Settings()

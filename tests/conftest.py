"""Fixtures: real PostgreSQL and Redis, the schema migrated once, a clean slate per test."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from executors.services import Services
from lab.alert_sink import AlertSink
from service.access.tokens import create_token
from service.api.app import create_app
from service.db.all_models import MODEL_MODULES
from service.db.engine import SessionFactory, create_engine, create_session_factory
from service.db.migrate import ensure_database, migrate
from service.db.models import Base
from service.db.security_models import Role
from service.devices.clients import make_nautobot_client, make_ssh_runner
from service.devices.host_keys import KnownHosts
from service.gitstore.locks import RepositoryLocks
from service.keyspace import ForeignKeysError, KeyedRedis, open_redis, refuse_foreign_keys
from service.nifi.pool import NifiClientPool
from service.queue.leases import Leases
from service.runs.reporting import EventPublisher
from service.secrets import KeyRing, KeyStore
from service.settings import (
    DatabaseSettings,
    QueueSettings,
    ReaperSettings,
    SecretsSettings,
    Settings,
    WorkerSettings,
)
from service.settings import (
    RedisSettings as OpsRedisSettings,
)

TEST_DATABASE_URL = os.environ.get(
    "OPSJOBS_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/opsjobs_test"
)
TEST_REDIS_URL = os.environ.get("OPSJOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
# Every key the tests write starts with it (installations a test makes nest under it), so
# the per-test flush can tell the test database holds nothing of anyone else.
TEST_REDIS_PREFIX = "opsjobs-test:"
# One key file per test process, made before anything loads it, removed when it exits.
TEST_KEY_FILE = Path(tempfile.mkdtemp(prefix="opsjobs-test-keys-")) / "keys.json"
atexit.register(shutil.rmtree, TEST_KEY_FILE.parent, ignore_errors=True)
KeyRing.load(TEST_KEY_FILE, create=True)


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secrets": SecretsSettings(key_file=TEST_KEY_FILE),
        "database": DatabaseSettings(url=TEST_DATABASE_URL, pool_size=5, max_overflow=20),
        "redis": OpsRedisSettings(url=TEST_REDIS_URL, prefix=TEST_REDIS_PREFIX),
        # The maintenance crons run on their own queue so burst workers of the job queues
        # stop as soon as their queue is empty.
        "queues": QueueSettings(default="t-default", devices="t-devices", scheduler="t-sched"),
        "worker": WorkerSettings(
            heartbeat_interval=0.2, poll_delay=0.05, shutdown_grace=0, progress_min_interval=0
        ),
        "reaper": ReaperSettings(lost_after=1.0, interval=1),
        # No Nautobot unless a test starts one: settings.toml may point at the lab's, and its
        # cache cron would fire system runs in the middle of tests.
        "nautobot": {"url": ""},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    try:
        await ensure_database(settings.database.url)
    except OSError as exc:
        pytest.exit(f"PostgreSQL is not reachable at {settings.database.url}: {exc}", returncode=3)
    engine = create_engine(settings.database)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[KeyedRedis]:
    try:
        pool = await open_redis(settings.redis.url, settings.redis.prefix, retry=1)
    except Exception as exc:
        pytest.exit(f"Redis is not reachable at {settings.redis.url}: {exc}", returncode=3)
    try:
        await refuse_foreign_keys(pool, pool.keyspace, settings.redis.url)
    except ForeignKeysError as exc:
        pytest.exit(str(exc), returncode=3)
    yield pool
    await pool.aclose()


@pytest.fixture
async def services(
    settings: Settings, engine: AsyncEngine, sessions: SessionFactory, redis: KeyedRedis
) -> AsyncIterator[Services]:
    """A clean database and Redis database, and the services a worker would hold."""
    assert MODEL_MODULES  # every table is known to the metadata
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await refuse_foreign_keys(redis, redis.keyspace, settings.redis.url)
    await redis.flushdb()
    leases = Leases(redis, ttl=settings.leases.ttl, poll=settings.leases.poll)
    async with NifiClientPool() as nifi, make_nautobot_client(settings.nautobot) as nautobot:
        yield Services(
            settings=settings,
            sessions=sessions,
            redis=redis,
            keys=KeyStore(KeyRing.load(settings.secrets.key_file)),
            worker_id="test-worker",
            nifi=nifi,
            nautobot=nautobot,
            ssh=make_ssh_runner(
                settings.ssh,
                KnownHosts(settings.ssh.known_hosts, "", accept_new=True),
                leases,
                settings.leases.per_device,
            ),
            git_locks=RepositoryLocks(redis),
            events=EventPublisher(redis, settings.events),
            leases=leases,
        )


WEBHOOK_SECRET = "a-webhook-secret-of-the-tests"


@pytest.fixture
async def sink() -> AsyncIterator[AlertSink]:
    """The lab's alert receivers on free loopback ports; webhooks to ``/hooks/tests`` are
    checked against ``WEBHOOK_SECRET``."""
    async with AlertSink() as receivers:
        receivers.secrets["tests"] = WEBHOOK_SECRET
        yield receivers


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
async def api_url(settings: Settings, engine: AsyncEngine) -> AsyncIterator[str]:
    """The API served by uvicorn on a free loopback port for the whole session."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def token_for(services: Services, role: Role, username: str) -> str:
    _, token = await create_token(
        services.sessions,
        name=f"{username}-{role.value}",
        username=username,
        role=role,
        created_by="tests",
    )
    return token


@pytest.fixture
async def client(api_url: str, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's client; ``anonymous`` and ``as_role`` give the others."""
    token = await token_for(services, Role.ADMIN, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=10, headers=headers) as http:
        yield http


@pytest.fixture
async def anonymous(api_url: str, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        yield http


@pytest.fixture
def as_role(
    api_url: str, services: Services
) -> Callable[[Role, str], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with as_role(Role.VIEWER, "vera") as http:`` — a client for that user."""

    @contextlib.asynccontextmanager
    async def open_client(role: Role, username: str) -> AsyncIterator[httpx.AsyncClient]:
        token = await token_for(services, role, username)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api_url, timeout=10, headers=headers) as http:
            yield http

    return open_client

"""Dropped database connections never become 500s, and the pool recovers by itself.

The API runs under uvicorn on a loopback socket against a private PostgreSQL cluster whose
connections are terminated (``pg_terminate_backend``) every 2 s while clients list and
create runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.exc import InternalError

from service.access.tokens import create_token
from service.api.app import create_app
from service.db.engine import create_engine, create_session_factory, is_lost_connection
from service.db.migrate import ensure_database, migrate
from service.db.models import JobRun
from service.db.security_models import Role
from service.runs import lifecycle, queries
from service.settings import DatabaseSettings, Settings
from tests.conftest import free_port, make_settings
from tests.faults.postgres_instance import PostgresInstance, postgres_instance

KILL_EVERY_S = 2.0
DURATION_S = 13.0


@dataclass(frozen=True)
class Answer:
    method: str
    started: float
    ended: float
    status: int


@pytest.fixture
async def private_pg() -> AsyncIterator[PostgresInstance]:
    async with postgres_instance() as instance:
        yield instance


async def _serve(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
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
    return server, task, f"http://127.0.0.1:{port}"


async def test_terminated_connections_never_answer_500(private_pg: PostgresInstance) -> None:
    url = private_pg.url("opsjobs_faults")
    settings = make_settings(database=DatabaseSettings(url=url, pool_size=5, max_overflow=5))
    await ensure_database(url)
    engine = create_engine(settings.database)
    await migrate(engine)
    sessions = create_session_factory(engine)
    _, token = await create_token(
        sessions, name="faults", username="admin", role=Role.ADMIN, created_by="tests"
    )
    await engine.dispose()

    server, serving, base_url = await _serve(settings)
    answers: list[Answer] = []
    kills: list[tuple[float, float]] = []
    deadline = time.monotonic() + DURATION_S

    async def client(method: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                if method == "GET":
                    response = await http.get("/api/job-runs", params={"page_size": 20})
                else:
                    response = await http.post(
                        "/api/job-runs", json={"job_type": "diag.echo", "parameters": {}}
                    )
                answers.append(Answer(method, started, time.monotonic(), response.status_code))
                if response.status_code >= 500:
                    body = response.json()
                    assert set(body) == {"error"}, body  # the project's error shape
                await asyncio.sleep(0.02)

    async def killer() -> None:
        while time.monotonic() < deadline - KILL_EVERY_S / 2:
            await asyncio.sleep(KILL_EVERY_S)
            started = time.monotonic()
            await private_pg.terminate_backends()
            kills.append((started, time.monotonic()))

    try:
        await asyncio.gather(
            killer(), *(client("GET") for _ in range(3)), *(client("POST") for _ in range(2))
        )
    finally:
        server.should_exit = True
        await serving

    def during_kill(answer: Answer) -> bool:
        return any(answer.started <= end and answer.ended >= start for start, end in kills)

    errors_500 = [a for a in answers if a.status == 500]
    other_5xx = [a for a in answers if a.status >= 500 and a.status != 503]
    late_503 = [a for a in answers if a.status == 503 and not during_kill(a)]
    created = sum(1 for a in answers if a.method == "POST" and a.status == 202)
    assert len(kills) >= 5, kills
    assert created > 20, created
    assert len(answers) > 100, len(answers)
    assert not errors_500, f"500 answers: {len(errors_500)} of {len(answers)}"
    assert not other_5xx, f"5xx other than 503: {len(other_5xx)}"
    assert not late_503, (
        f"503 on requests that started after a kill completed: {len(late_503)}"
        f" of {len(answers)} ({[(a.method, a.started) for a in late_503][:5]}, kills {kills})"
    )
    # Every 202 is a run in the record.
    engine = create_engine(settings.database)
    try:
        async with create_session_factory(engine)() as session:
            stored = await session.scalar(select(func.count()).select_from(JobRun))
    finally:
        await engine.dispose()
    assert stored is not None
    assert stored >= created, f"runs answered 202 but not stored: {created - stored}"


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as chained:
        return chained


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (asyncpg.exceptions.InternalClientError("cannot switch to state 12"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (InternalError("SELECT 1", None, ConnectionResetError()), True),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
        (asyncpg.exceptions.DataError("out of range"), False),
        (asyncpg.exceptions._base.DataError("invalid input for $1"), False),
        (_caused(RedisConnectionError("redis down"), ConnectionRefusedError()), False),
        (_caused(httpx.ConnectError("nifi down"), OSError()), False),
        (ValueError("nothing to do with it"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_what_counts_as_a_lost_connection(error: BaseException, lost: bool) -> None:
    assert is_lost_connection(error) is lost


async def test_a_read_that_lost_its_connection_is_answered_on_a_fresh_one(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET whose statement met a dropped connection runs once more (200); a write is
    answered 503 in the error shape, never 500."""
    calls: list[str] = []
    list_runs = queries.list_runs

    async def first_call_loses_its_connection(*args: Any, **kwargs: Any) -> Any:
        calls.append("list")
        if len(calls) == 1:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return await list_runs(*args, **kwargs)

    monkeypatch.setattr(queries, "list_runs", first_call_loses_its_connection)
    answer = await client.get("/api/job-runs")
    assert answer.status_code == 200, answer.text
    assert calls == ["list", "list"]

    async def always_lost(*args: Any, **kwargs: Any) -> Any:
        raise asyncpg.exceptions.InternalClientError("cannot switch to state 12")

    monkeypatch.setattr(queries, "list_runs", always_lost)
    refused = await client.get("/api/job-runs")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable"

    monkeypatch.setattr(lifecycle, "accept_run", always_lost)
    write = await client.post("/api/job-runs", json={"job_type": "diag.echo"})
    assert write.status_code == 503, write.text
    assert write.json()["error"]["code"] == "service_unavailable"

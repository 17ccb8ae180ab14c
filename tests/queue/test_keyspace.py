"""Key prefixes: two installations share one Redis database without taking each other's
jobs, and a database holding someone else's keys is never emptied."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from executors import get_executor
from executors.services import Services
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.keyspace import (
    ForeignKeysError,
    KeyedRedis,
    KeySpace,
    open_redis,
    refuse_foreign_keys,
)
from service.queue import transport
from service.runs import lifecycle
from service.runs.requests import adhoc_request
from service.settings import RedisSettings, Settings
from service.worker.app import build_worker
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_PREFIX, TEST_REDIS_URL, make_settings
from tests.console.stack import REPO, private_redis
from tests.workers import running_worker

RUNS_EACH = 4


def installation(name: str) -> Settings:
    """The test settings of an installation whose keys nest under the tests' prefix."""
    return make_settings(
        redis=RedisSettings(url=TEST_REDIS_URL, prefix=f"{TEST_REDIS_PREFIX}{name}:")
    )


async def queue_runs(services: Services, settings: Settings, redis: KeyedRedis) -> list[int]:
    run_ids = []
    for index in range(RUNS_EACH):
        request = adhoc_request(
            settings,
            get_executor,
            job_type="diag.echo",
            parameters={"message": f"{redis.keyspace.prefix}{index}"},
            triggered_by=TriggeredBy.API,
            executed_by="admin",
        )
        run_ids.append(await lifecycle.enqueue_run(services.sessions, redis, request))
    return run_ids


async def burst(settings: Settings) -> str:
    """Run a burst worker of the installation's default queue; returns its worker id."""
    worker = build_worker(settings, settings.queues.default, burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        await worker.close()
    worker_id: str = worker.ctx["worker_id"]
    return worker_id


async def runs_by_id(services: Services, run_ids: list[int]) -> dict[int, JobRun]:
    async with services.sessions() as session:
        rows = await session.scalars(select(JobRun).where(JobRun.id.in_(run_ids)))
        return {run.id: run for run in rows}


@pytest.fixture
async def two_clients(services: Services) -> AsyncIterator[tuple[KeyedRedis, KeyedRedis]]:
    a, b = installation("a"), installation("b")
    redis_a = await open_redis(a.redis.url, a.redis.prefix)
    redis_b = await open_redis(b.redis.url, b.redis.prefix)
    try:
        yield redis_a, redis_b
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


async def test_two_installations_on_one_redis_database_keep_to_their_own_jobs(
    services: Services, two_clients: tuple[KeyedRedis, KeyedRedis]
) -> None:
    redis_a, redis_b = two_clients
    a, b = installation("a"), installation("b")
    # Same queue names, same Redis database: only the prefixes differ.
    assert a.queues.default == b.queues.default
    runs_a = await queue_runs(services, a, redis_a)
    runs_b = await queue_runs(services, b, redis_b)

    # B's worker alone drains B's queue and leaves every run of A waiting.
    worker_b = await burst(b)
    after_b = await runs_by_id(services, runs_a + runs_b)
    assert {after_b[run_id].status for run_id in runs_b} == {RunStatus.COMPLETED.value}
    assert {after_b[run_id].worker_id for run_id in runs_b} == {worker_b}
    assert {after_b[run_id].status for run_id in runs_a} == {RunStatus.PENDING.value}
    assert await redis_a.zcard(redis_a.keyspace.queue(a.queues.default)) == RUNS_EACH

    # Side by side: both workers at once, each on new runs of its own and A's backlog.
    more_b = await queue_runs(services, b, redis_b)
    worker_a, worker_b2 = await asyncio.gather(burst(a), burst(b))
    final = await runs_by_id(services, runs_a + runs_b + more_b)
    assert {final[run_id].status for run_id in final} == {RunStatus.COMPLETED.value}
    assert {final[run_id].worker_id for run_id in runs_a} == {worker_a}
    assert {final[run_id].worker_id for run_id in more_b} == {worker_b2}

    # Every key either wrote is under its own prefix (arq's after arq's constant part).
    keys = [key.decode() async for key in services.redis.scan_iter()]
    assert keys
    for key in keys:
        assert redis_a.keyspace.owns(key) or redis_b.keyspace.owns(key), key


async def test_the_same_run_id_is_two_jobs_in_two_installations(
    services: Services, two_clients: tuple[KeyedRedis, KeyedRedis]
) -> None:
    redis_a, redis_b = two_clients
    assert await transport.enqueue_dispatch(redis_a, 7, "default")
    assert await transport.enqueue_dispatch(redis_b, 7, "default")
    assert not await transport.enqueue_dispatch(redis_a, 7, "default")
    await transport.discard_job(redis_a, 7, "default")
    assert not await transport.is_queued(redis_a, 7)
    assert await transport.is_queued(redis_b, 7)


def test_every_key_name_starts_with_the_prefix_or_follows_an_arq_constant() -> None:
    space = KeySpace("site1:")
    assert space.queue("default") == "site1:queue:default"
    assert space.job_id(42) == "site1:run:42"
    assert space.cron("scheduler_tick") == "site1:cron:scheduler_tick"
    for key in (
        space.queue("devices"),
        space.run_events(3),
        space.lease("device:9"),
        space.git_lock("backups"),
        space.worker("host:1:default:abc"),
        space.scheduler_tick(),
        space.device_cache(),
        space.console_session("ab12"),
        "arq:job:site1:run:42",
        "arq:in-progress:site1:cron:notify:1700000000000",
        "site1:queue:default:health-check",
    ):
        assert space.owns(key), key
    for key in ("default", "arq:queue", "arq:job:run:42", "arq:job:site2:run:42", "site2:x"):
        assert not space.owns(key), key


@pytest.mark.parametrize("prefix", ["", "a b:", "ops*:", "ops[1]:"])
def test_a_prefix_that_cannot_name_keys_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="prefix"):
        RedisSettings(prefix=prefix)


async def test_a_database_with_keys_of_someone_else_is_not_emptied(services: Services) -> None:
    foreign = "other-app:queue"
    await services.redis.set(foreign, "theirs")
    try:
        with pytest.raises(ForeignKeysError) as refused:
            await refuse_foreign_keys(services.redis, services.keyspace, TEST_REDIS_URL)
        message = str(refused.value)
        assert TEST_REDIS_URL in message
        assert repr(foreign) in message
        assert "\n" not in message
    finally:
        await services.redis.delete(foreign)
    await refuse_foreign_keys(services.redis, services.keyspace, TEST_REDIS_URL)


async def test_both_installations_run_their_own_crons_each_tick(
    services: Services, two_clients: tuple[KeyedRedis, KeyedRedis]
) -> None:
    """arq keeps one execution per cron job id; the ids carry the prefix, so a tick of one
    installation never stands in for the other's."""
    redis_a, redis_b = two_clients
    a, b = installation("a"), installation("b")
    async with (
        running_worker(a, a.queues.scheduler),
        running_worker(b, b.queues.scheduler),
        asyncio.timeout(30),
    ):
        while True:
            ticked = [await r.exists(r.keyspace.scheduler_tick()) for r in (redis_a, redis_b)]
            if all(ticked):
                break
            await asyncio.sleep(0.1)
    cron_jobs = [
        key.decode()
        async for key in services.redis.scan_iter(match="arq:in-progress:*cron:scheduler_tick:*")
    ]
    assert any(key.startswith(f"arq:in-progress:{redis_a.keyspace.prefix}") for key in cron_jobs)
    assert any(key.startswith(f"arq:in-progress:{redis_b.keyspace.prefix}") for key in cron_jobs)


async def test_the_test_suite_refuses_a_redis_database_holding_keys_of_someone_else(
    tmp_path: Path,
) -> None:
    """The suite's own fixtures, in a pytest of their own, on a private Redis holding one
    key of another application: one line naming the database and the key, nothing emptied."""
    async with private_redis(tmp_path) as redis_url:
        other = await open_redis(redis_url, "someone-else:")
        try:
            await other.set("someone-else:settings", "kept")
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/queue/test_transport.py",
                cwd=REPO,
                env={
                    **os.environ,
                    "OPSJOBS_TEST_REDIS_URL": redis_url,
                    "OPSJOBS_TEST_DATABASE_URL": f"{TEST_DATABASE_URL}_foreign",
                },
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
            assert await other.get("someone-else:settings") == b"kept"
        finally:
            await other.aclose()
    assert process.returncode == 3, out.decode()
    assert (
        f"Redis database {redis_url} holds keys outside the prefix 'opsjobs-test:' "
        "(e.g. 'someone-else:settings'); refusing to empty it"
    ) in out.decode()


async def test_the_refusal_names_the_database_without_its_password(services: Services) -> None:
    await services.redis.set("other-app:job", "theirs")
    try:
        with pytest.raises(ForeignKeysError) as refused:
            await refuse_foreign_keys(
                services.redis, services.keyspace, "redis://:s3cret@127.0.0.1:6379/3"
            )
    finally:
        await services.redis.delete("other-app:job")
    assert "redis://:***@127.0.0.1:6379/3" in str(refused.value)
    assert "s3cret" not in str(refused.value)

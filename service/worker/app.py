"""arq workers: one per queue, one job function (``dispatch_job``) plus the maintenance crons.

Resources (engine, session factory, the Redis pool arq made) are created in
``on_startup`` and released in ``on_shutdown``; nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func

from executors.services import Services
from service.db.engine import create_engine, create_session_factory
from service.devices.clients import load_known_hosts, make_nautobot_client, make_ssh_runner
from service.gitstore.locks import RepositoryLocks
from service.keyspace import KeySpace, open_redis
from service.nifi.pool import NifiClientPool
from service.queue.leases import Leases
from service.queue.scripts import LuaScript
from service.queue.transport import DISPATCH_FUNCTION
from service.runs.reporting import EventPublisher
from service.secrets import KeyRing, KeyStore
from service.settings import Settings
from service.worker.crons import cron_jobs
from service.worker.dispatch import dispatch_job
from service.worker.health import start_heartbeat, stop_heartbeat
from service.worker.outages import database_outage

logger = logging.getLogger(__name__)

# arq counts every start (crash and shutdown re-deliveries too); the run's own retry
# policy lives in PostgreSQL, so arq must never give up on a run by itself.
ARQ_MAX_TRIES = 1000
# Our own per-run timeout fires first; arq's is only a backstop.
ARQ_TIMEOUT_MARGIN_S = 60


# arq takes a job with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four round trips,
# one job after another, in the loop that feeds every job slot. This script does the same
# check-and-set atomically in one: the job must still be queued and due, and not in
# progress; the in-progress key is then set. It returns the job's score, or nil.
_CLAIM_JOB = LuaScript(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""
)


class OpsjobsWorker(Worker):
    """arq's worker, taking each job in one Redis round trip instead of four, on a Redis
    client that names keys under the installation's prefix."""

    def __init__(self, *args: Any, redis_url: str, redis_prefix: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_url = redis_url
        self._redis_prefix = redis_prefix

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await open_redis(self._redis_url, self._redis_prefix)
        await super().main()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # Same bookkeeping as arq 0.28's start_jobs (pinned in pyproject.toml).
        for job_id_b in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            job_id = job_id_b.decode()
            score = await _CLAIM_JOB(
                self.pool,
                [in_progress_key_prefix + job_id, self.queue_name],
                [job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000)],
            )
            if score is None:
                # Taken by another worker, finished meanwhile, or deferred again.
                self.job_counter -= 1
                self.sem.release()
                logger.debug("job %s already running elsewhere", job_id)
                continue
            task = self.loop.create_task(self.run_job(job_id, int(float(cast(bytes, score)))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task


def make_worker_id(queue: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{queue}:{uuid.uuid4().hex[:6]}"


def job_functions(settings: Settings) -> list[Function]:
    async def run(ctx: dict[Any, Any], run_id: int) -> str:
        return await dispatch_job(ctx, run_id)  # type: ignore[arg-type]

    return [
        func(
            run,
            name=DISPATCH_FUNCTION,
            max_tries=ARQ_MAX_TRIES,
            timeout=settings.worker.max_timeout + ARQ_TIMEOUT_MARGIN_S,
            keep_result=0,
        )
    ]


async def on_startup(ctx: dict[Any, Any]) -> None:
    settings: Settings = ctx["settings"]
    engine = create_engine(settings.database)
    ctx["engine"] = engine
    ring = await asyncio.to_thread(KeyRing.load, settings.secrets.key_file)
    leases = Leases(ctx["redis"], ttl=settings.leases.ttl, poll=settings.leases.poll)
    ctx["services"] = Services(
        settings=settings,
        sessions=create_session_factory(engine),
        redis=ctx["redis"],
        keys=KeyStore(ring),
        worker_id=ctx["worker_id"],
        nifi=NifiClientPool(),
        nautobot=make_nautobot_client(settings.nautobot),
        ssh=make_ssh_runner(
            settings.ssh,
            await load_known_hosts(settings.ssh),
            leases,
            settings.leases.per_device,
        ),
        git_locks=RepositoryLocks(ctx["redis"], wait=settings.git.lock_wait),
        events=EventPublisher(ctx["redis"], settings.events),
        leases=leases,
    )
    outage = ctx.setdefault("database_outage", database_outage())
    # Every worker (not only the scheduler's) reports itself alive for GET /api/workers.
    ctx["heartbeat"] = start_heartbeat(ctx["services"], ctx["queue"], outage)
    logger.info("worker started", extra={"queue": ctx["queue"], "worker_id": ctx["worker_id"]})


async def on_shutdown(ctx: dict[Any, Any]) -> None:
    heartbeat: asyncio.Task[None] | None = ctx.get("heartbeat")
    if heartbeat is not None:
        await stop_heartbeat(ctx["services"], heartbeat)
    services: Services | None = ctx.get("services")
    if services is not None:
        await services.nifi.aclose()
        await services.nautobot.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
    logger.info("worker stopped", extra={"queue": ctx.get("queue")})


def build_worker(
    settings: Settings,
    queue: str,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    redis_pool: ArqRedis | None = None,
) -> Worker:
    """An arq worker for ``queue``; workers of the scheduler queue also run the crons.

    ``redis_pool`` gives it an existing client (opened by :func:`~service.keyspace.open_redis`)
    instead of one of its own.
    """
    worker_settings = settings.worker
    keyspace = KeySpace(settings.redis.prefix)
    return OpsjobsWorker(
        functions=job_functions(settings),
        queue_name=keyspace.queue(queue),
        cron_jobs=cron_jobs(settings) if queue == settings.queues.scheduler else None,
        redis_url=settings.redis.url,
        redis_prefix=settings.redis.prefix,
        redis_pool=redis_pool,
        burst=burst,
        handle_signals=handle_signals,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=worker_settings.max_jobs,
        poll_delay=worker_settings.poll_delay,
        job_timeout=worker_settings.max_timeout + ARQ_TIMEOUT_MARGIN_S,
        job_completion_wait=int(worker_settings.shutdown_grace),
        keep_result=0,
        max_tries=ARQ_MAX_TRIES,
        allow_abort_jobs=True,
        ctx={"settings": settings, "queue": queue, "worker_id": make_worker_id(queue)},
        log_results=False,
    )

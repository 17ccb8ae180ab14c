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
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func

from executors.services import Services
from service.db.engine import create_engine, create_session_factory
from service.devices.clients import load_known_hosts, make_nautobot_client, make_ssh_runner
from service.gitstore.locks import RepositoryLocks
from service.keyspace import KeySpace, keyspace_of, open_redis
from service.nifi.pool import NifiClientPool
from service.queue import transport
from service.queue.leases import Leases
from service.queue.outage import REDIS_UNAVAILABLE, RedisOutage
from service.queue.scripts import LuaScript
from service.queue.transport import DISPATCH_FUNCTION
from service.runs.reporting import EventPublisher
from service.secrets import KeyRing, KeyStore
from service.settings import Settings
from service.worker.crons import cron_jobs
from service.worker.dispatch import dispatch_job
from service.worker.health import beat, start_heartbeat, stop_heartbeat
from service.worker.maintenance import reconcile_after_outage
from service.worker.outages import database_outage

logger = logging.getLogger(__name__)

# arq counts every start (crash and shutdown re-deliveries too); the run's own retry
# policy lives in PostgreSQL, so arq must never give up on a run by itself.
ARQ_MAX_TRIES = 1000
# Our own per-run timeout fires first; arq's is only a backstop.
ARQ_TIMEOUT_MARGIN_S = 60


# arq takes a job with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four round trips,
# one job after another, in the loop that feeds every job slot. This script does the same
# check-and-set atomically in one: the job must still be queued and due; the in-progress
# key is then set to the taking worker's id. arq's own workers write "1" there and never
# refresh it, so the job of a killed worker stays "in progress" for the whole job timeout,
# and arq, reading only the first jobs of a queue per poll, never reaches the jobs behind
# a few hundred such ones. Here an in-progress key whose worker has no heartbeat key
# (``<prefix>worker:<id>``, see ``service.worker.health``), or that names the asking worker
# itself (a job it no longer runs, left by a Redis outage), is void and the job is taken
# over: ``dispatch_job`` then finds its run's state in PostgreSQL and arq removes the job.
# Only run jobs are taken over (ARGV[6] = 1): a cron job's in-progress key outlives its
# run on purpose (arq's ``keep_cronjob_progress``), so one fire runs once.
# Returns {score, previous owner or ""}, or nil.
_CLAIM_JOB = LuaScript(
    """
local owner = redis.call('GET', KEYS[1])
if owner then
  if ARGV[6] ~= '1' or owner == '1' then return false end
  if owner ~= ARGV[4] and redis.call('EXISTS', ARGV[5] .. owner) == 1 then return false end
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[4])
return {score, owner or ''}
"""
)


class OpsjobsWorker(Worker):
    """arq's worker, taking each job in one Redis round trip instead of four, taking over
    jobs of dead workers, and living through Redis outages (it waits and retries), on a
    Redis client that names keys under the installation's prefix."""

    def __init__(
        self, *args: Any, worker_id: str, redis_url: str, redis_prefix: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.worker_id = worker_id
        self._redis_url = redis_url
        self._redis_prefix = redis_prefix
        self.redis_outage = RedisOutage(f"worker {worker_id}")
        self.ctx["redis_outage"] = self.redis_outage
        self.jobs_taken_over = 0
        # Called (as a task) when Redis is back after an outage.
        self.on_redis_back: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._redis_back_task: asyncio.Task[None] | None = None

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await open_redis(self._redis_url, self._redis_prefix)
        await super().main()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # Same bookkeeping as arq 0.28's start_jobs (pinned in pyproject.toml).
        for job_id_b in job_ids:
            job_id = job_id_b.decode()
            running = self.tasks.get(job_id)
            if running is not None and not running.done():
                continue
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            try:
                claimed = await _CLAIM_JOB(
                    self.pool,
                    [in_progress_key_prefix + job_id, self.queue_name],
                    [
                        job_id,
                        timestamp_ms(),
                        int(self.in_progress_timeout_s * 1000),
                        self.worker_id,
                        keyspace_of(self.pool).worker(""),
                        1 if keyspace_of(self.pool).run_id_of(job_id) is not None else 0,
                    ],
                )
            except BaseException:
                self.job_counter -= 1
                self.sem.release()
                raise
            if claimed is None:
                # Taken by another worker, finished meanwhile, or deferred again.
                self.job_counter -= 1
                self.sem.release()
                logger.debug("job %s already running elsewhere", job_id)
                continue
            score, owner = cast(list[bytes], claimed)
            if owner and owner.decode() != self.worker_id:
                self.jobs_taken_over += 1
                logger.info(
                    "job %s taken over from worker %s, which has no heartbeat",
                    job_id,
                    owner.decode(),
                )
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except REDIS_UNAVAILABLE as exc:
            # arq could not read or settle the job. PostgreSQL holds the run's state; the
            # job, if Redis kept it, is taken again (it names this worker) and settled then.
            self.redis_outage.failed(exc)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        if finish or not incr_score or keep_in_progress is not None:
            await super().finish_job(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            )
            return
        # A deferred job (``Retry(defer=…)``): due at once instead if a wake-up came while
        # this worker decided to defer it (the run it waits for ended meanwhile).
        await transport.defer_job(self.pool, self.queue_name, job_id, incr_score)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_UNAVAILABLE as exc:
            self.redis_outage.failed(exc)
            await asyncio.sleep(self.redis_outage.next_delay())
            return
        if self.redis_outage.down:
            self.redis_outage.recovered()
            if self.on_redis_back is not None:
                self._redis_back_task = asyncio.create_task(self.on_redis_back())

    async def close(self) -> None:
        if self._redis_back_task is not None:
            self._redis_back_task.cancel()
        try:
            await super().close()
        except REDIS_UNAVAILABLE as exc:
            # arq's close deletes its health-check key first; without Redis, still release
            # the database and HTTP clients.
            self.redis_outage.failed(exc)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)


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
        events=EventPublisher(ctx["redis"], settings.events, outage=ctx.get("redis_outage")),
        leases=leases,
    )
    # Every worker (not only the scheduler's) reports itself alive for GET /api/workers,
    # and before taking its first job: a job in progress under a worker id without a
    # heartbeat key is taken over by other workers.
    await beat(ctx["services"], ctx["queue"], datetime.now(UTC), running=[])
    db_outage = ctx.setdefault("database_outage", database_outage())
    ctx["heartbeat"] = start_heartbeat(
        ctx["services"], ctx["queue"], ctx.get("redis_outage"), db_outage
    )
    logger.info("worker started", extra={"queue": ctx["queue"], "worker_id": ctx["worker_id"]})


async def on_shutdown(ctx: dict[Any, Any]) -> None:
    # Entries are taken out as they are released: a second call does nothing.
    heartbeat: asyncio.Task[None] | None = ctx.pop("heartbeat", None)
    services: Services | None = ctx.pop("services", None)
    if heartbeat is not None and services is not None:
        await stop_heartbeat(services, heartbeat)
    if services is not None:
        await services.events.aclose()
        await services.nifi.aclose()
        await services.nautobot.aclose()
    engine = ctx.pop("engine", None)
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
    worker_id = make_worker_id(queue)
    keyspace = KeySpace(settings.redis.prefix)
    worker = OpsjobsWorker(
        worker_id=worker_id,
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
        ctx={"settings": settings, "queue": queue, "worker_id": worker_id},
        log_results=False,
    )
    if queue == settings.queues.scheduler:
        context = worker.ctx

        async def reconcile() -> None:
            services: Services | None = context.get("services")
            if services is not None:
                await reconcile_after_outage(services)

        worker.on_redis_back = reconcile
    return worker

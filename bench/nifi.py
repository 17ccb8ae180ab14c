"""NiFi fan-out: ``check_queues`` over many simulated clusters against the ideal wall time,
and the size of a run's result for a large canvas.

The lab runs in a child process (``bench.nifi_lab_server``) so its CPU does not count
against the client. Figures, each next to what it is compared with:

* ideal = clusters × latency / concurrency: a cluster's check costs one round trip of
  latency, since its cluster-health request (``/flow/cluster/summary``) goes out beside
  its status request;
* plain aiohttp: the same two GETs per cluster, side by side, from bare ``aiohttp``
  sessions, nothing else (context);
* NiFi client fan-out: ``service.nifi.checks.check_queues`` with a worker's client pool,
  cold (first use: TCP connects) and warm (the steady state of a worker);
* the whole run: a ``check_queues`` run through an in-process worker, from the run row's
  ``started_at`` to ``finished_at`` (target resolution and per-target rows included).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import select
from yarl import URL

from bench.harness import BenchStores, report
from service.db.models import JobRun, JobRunTarget, TriggeredBy
from service.db.nifi_models import NifiClusterRow, NifiInstanceRow
from service.nifi.checks import check_queues
from service.nifi.configs import CheckQueuesConfig
from service.nifi.endpoints import ClusterMember, NifiCluster, NifiEndpoint
from service.nifi.pool import NifiClientPool
from service.nifi.queue_check import QueueThresholds
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.secrets import KeyRing
from service.settings import SecretsSettings, Settings
from service.worker.app import build_worker

CLUSTERS = 200
LATENCY = 0.05
CONCURRENCY = 50
BIG_CONNECTIONS = 5000
RED_FRACTION = 0.01
REPEATS = 5
TARGET_RATIO = 1.25
TARGET_RESULT_BYTES = 64 * 1024
STATUS_PATH = "flow/process-groups/root/status"
SUMMARY_PATH = "flow/cluster/summary"
REQUESTS_PER_CLUSTER = 2


@asynccontextmanager
async def lab_process() -> AsyncIterator[dict[str, str]]:
    """Start the lab child; yields instance name → API root; stops it on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.nifi_lab_server",
        str(CLUSTERS),
        str(LATENCY),
        str(BIG_CONNECTIONS),
        str(RED_FRACTION),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line:
            raise RuntimeError("the NiFi lab process exited before serving")
        urls: dict[str, str] = json.loads(line)["instances"]
        yield urls
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def median_of(action: Callable[[], Awaitable[object]]) -> float:
    return statistics.median([await timed(action) for _ in range(REPEATS)])


async def cpu_per_request(action: Callable[[], Awaitable[object]], requests: int) -> float:
    """This process's CPU seconds per request over one more run of ``action``."""
    started = time.process_time()
    await action()
    return (time.process_time() - started) / requests


@dataclass(frozen=True)
class Timing:
    warm: float
    cpu_per_request: float
    cold: float | None = None


async def plain_aiohttp(urls: list[str]) -> Timing:
    """Warm median of the bare minimum: per instance one ``aiohttp.ClientSession`` (the
    connection layout of the client pool), the status and summary GETs side by side, JSON
    decoded; a semaphore per cluster."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(aiohttp.ClientSession(trust_env=False)) for _ in urls
        ]
        targets = [
            (
                URL(f"{url}/{STATUS_PATH}").update_query(recursive="true"),
                URL(f"{url}/{SUMMARY_PATH}"),
            )
            for url in urls
        ]

        async def get(http: aiohttp.ClientSession, url: URL) -> None:
            async with http.get(url) as response:
                response.raise_for_status()
                await response.json()

        async def one(http: aiohttp.ClientSession, pair: tuple[URL, URL]) -> None:
            async with limit:
                await asyncio.gather(*(get(http, url) for url in pair))

        async def all_of_them() -> None:
            await asyncio.gather(
                *(one(http, pair) for http, pair in zip(sessions, targets, strict=True))
            )

        await all_of_them()  # warm-up: connections open
        warm = await median_of(all_of_them)
        requests = len(urls) * REQUESTS_PER_CLUSTER
        return Timing(warm, await cpu_per_request(all_of_them, requests))


async def client_fan_out(urls: list[str]) -> Timing:
    """Cold and warm-median wall time of the NiFi client fan-out ``check_queues`` uses."""
    clusters = [
        NifiCluster(
            id=str(index),
            name=f"cluster {index}",
            members=(ClusterMember(NifiEndpoint(name=f"n{index}", url=url), is_primary=True),),
        )
        for index, url in enumerate(urls)
    ]
    thresholds = QueueThresholds()
    async with NifiClientPool() as pool:

        async def check() -> None:
            verdict = await check_queues(pool, clusters, thresholds, concurrency=CONCURRENCY)
            if verdict.summary.green != len(clusters):
                raise RuntimeError(f"unexpected verdict {verdict.summary}")

        cold = await timed(check)
        warm = await median_of(check)
        requests = len(clusters) * REQUESTS_PER_CLUSTER
        return Timing(warm, await cpu_per_request(check, requests), cold)


async def store_clusters(stores: BenchStores, urls: dict[str, str]) -> dict[str, int]:
    """One cluster of one instance (auth none) per lab instance; name → cluster id."""
    ids: dict[str, int] = {}
    async with stores.sessions.begin() as session:
        for name, url in urls.items():
            cluster = NifiClusterRow(name=name)
            session.add(cluster)
            await session.flush()
            session.add(
                NifiInstanceRow(
                    name=name, url=url, auth_mode="none", cluster_id=cluster.id, is_primary=True
                )
            )
            ids[name] = cluster.id
    return ids


async def worker_run(settings: Settings, stores: BenchStores, config: CheckQueuesConfig) -> int:
    """Queue one ``check_queues`` run and execute it in an in-process burst worker."""
    run_id = await lifecycle.enqueue_run(
        stores.sessions,
        stores.redis,
        RunRequest(
            job_type="check_queues",
            job_name="check_queues",
            queue=settings.queues.default,
            parameters=config.model_dump(mode="json"),
            triggered_by=TriggeredBy.API,
        ),
    )
    worker = build_worker(settings, settings.queues.default, burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        await worker.close()
    return run_id


async def load_run(stores: BenchStores, run_id: int) -> JobRun:
    async with stores.sessions() as session:
        run = await session.get(JobRun, run_id)
    if run is None or run.status != "completed":
        raise RuntimeError(f"run {run_id} did not complete: {run and run.summary}")
    return run


def ratio_row(seconds: float, ideal: float) -> str:
    return f"{seconds * 1000:7.1f} ms  ({seconds / ideal:.2f}x ideal)"


def json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


async def largest_target_row(stores: BenchStores, run_id: int) -> int:
    async with stores.sessions() as session:
        results = await session.scalars(
            select(JobRunTarget.result).where(JobRunTarget.run_id == run_id)
        )
        return max((json_size(result) for result in results), default=0)


async def run(stores: BenchStores) -> bool:
    key_dir = Path(tempfile.mkdtemp(prefix="opsjobs-bench-keys-"))
    atexit.register(shutil.rmtree, key_dir, ignore_errors=True)
    key_file = key_dir / "keys.json"
    await asyncio.to_thread(KeyRing.load, key_file, create=True)
    settings = stores.settings.model_copy(update={"secrets": SecretsSettings(key_file=key_file)})
    async with lab_process() as urls:
        small = [url for name, url in urls.items() if name != "big"]
        baseline = await plain_aiohttp(small)
        ours = await client_fan_out(small)
        cluster_ids = await store_clusters(stores, urls)
        fan_out_config = CheckQueuesConfig(
            cluster_ids=[str(cluster_ids[name]) for name in urls if name != "big"],
            concurrency=CONCURRENCY,
        )
        fan_out_run = await load_run(stores, await worker_run(settings, stores, fan_out_config))
        big_run_id = await worker_run(
            settings, stores, CheckQueuesConfig(cluster_ids=[str(cluster_ids["big"])])
        )
        big_run = await load_run(stores, big_run_id)
        big_row = await largest_target_row(stores, big_run_id)

    assert fan_out_run.started_at is not None
    assert fan_out_run.finished_at is not None
    whole_run = (fan_out_run.finished_at - fan_out_run.started_at).total_seconds()
    ideal = CLUSTERS * LATENCY / CONCURRENCY
    result_bytes = json_size(big_run.result)
    red = (big_run.result or {})["clusters"][0]["connection_summary"]["red"]
    assert ours.cold is not None
    budget = LATENCY / CONCURRENCY / REQUESTS_PER_CLUSTER
    report(
        f"NiFi fan-out: check_queues over {CLUSTERS} clusters, {LATENCY * 1000:.0f} ms per "
        f"request, concurrency {CONCURRENCY}, status and cluster summary side by side "
        "(lab in its own process)",
        [
            ("ideal (clusters x latency / concurrency)", f"{ideal * 1000:7.1f} ms"),
            ("plain aiohttp, warm (2 GETs + JSON only)", ratio_row(baseline.warm, ideal)),
            ("NiFi client fan-out, cold", ratio_row(ours.cold, ideal)),
            (
                "NiFi client fan-out, warm",
                ratio_row(ours.warm, ideal) + f"  target <= {TARGET_RATIO}",
            ),
            ("whole check_queues run (worker, target rows)", ratio_row(whole_run, ideal)),
            (
                "client CPU per request: plain aiohttp / ours",
                f"{baseline.cpu_per_request * 1000:7.2f} / {ours.cpu_per_request * 1000:.2f} ms"
                f"  (at most {budget * 1000:.2f} ms keeps {CONCURRENCY} clusters in flight)",
            ),
        ],
    )
    report(
        f"NiFi result size: one cluster, {BIG_CONNECTIONS} connections, {red} red "
        f"({RED_FRACTION:.0%})",
        [
            (
                "run result (compact report)",
                f"{result_bytes / 1024:7.1f} KiB  (target < {TARGET_RESULT_BYTES // 1024} KiB)",
            ),
            ("its target row", f"{big_row / 1024:7.1f} KiB"),
        ],
    )
    return ours.warm / ideal <= TARGET_RATIO and result_bytes < TARGET_RESULT_BYTES

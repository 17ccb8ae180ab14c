"""API latency and throughput with 100,000 runs in the database, against ``GET /healthz``.

``opsjobs api`` runs in a child process (one uvicorn process, as ``opsjobs up`` starts
it); concurrent async clients in this process measure the latency of run listings
(unfiltered and filtered) and the rate of ``POST /api/job-runs``. The baseline is the
same server answering ``/healthz`` (no database, no authentication) in the same run.
One run in ten is private to another operator and one in fifty to the bench's own: the
lists are read by an operator, who sees global runs and its own (``runs_visible_to``),
and once more by an admin, who sees every run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.console import measure_pages
from bench.harness import BenchStores, child_env, report
from bench.load import Measured, measure
from service.access.tokens import create_token
from service.db.engine import create_engine
from service.db.security_models import Role
from service.secrets import KeyRing

RUNS = 100_000
LIST_REQUESTS = 1000
LIST_CONCURRENCY = 4
POST_REQUESTS = 3000
POST_CONCURRENCY = 32
P99_TARGET_MS = 25.0
POST_TARGET_PER_S = 500.0
UNFILTERED = "/api/job-runs?page_size=50"
FILTERED = "/api/job-runs?page_size=50&status=completed&job_type=diag.echo"

OPERATOR = "bench"
# 100,000 finished runs over the last ~28 hours: four job types, mostly completed; a tenth
# private to another operator, a fiftieth to the bench's operator.
_FILL = text(
    """
    INSERT INTO job_runs (job_name, job_type, queue, status, outcome, triggered_by,
                          parameters, attempt, queued_at, started_at, finished_at, summary,
                          private_to)
    SELECT kind, kind, :queue,
           CASE WHEN g % 20 < 16 THEN 'completed' WHEN g % 20 < 19 THEN 'failed'
                ELSE 'cancelled' END,
           CASE WHEN g % 20 < 16 THEN 'ok' ELSE 'unknown' END,
           CASE WHEN g % 3 = 0 THEN 'schedule' ELSE 'api' END,
           jsonb_build_object('message', 'bench ' || g), 1,
           now() - make_interval(secs => (:runs - g)),
           now() - make_interval(secs => (:runs - g)) + interval '10 ms',
           now() - make_interval(secs => (:runs - g)) + interval '60 ms',
           'bench run ' || g,
           CASE WHEN g % 10 = 0 THEN 'someone-else' WHEN g % 50 = 1 THEN :operator END
    FROM generate_series(1, :runs) AS g,
         LATERAL (SELECT (ARRAY['diag.echo', 'diag.echo', 'diag.progress', 'check_queues'])
                         [1 + g % 4] AS kind) AS k
    """
)


async def fill_runs(stores: BenchStores) -> None:
    """Insert the runs in one statement, then vacuum as autovacuum would after a load."""
    async with stores.sessions.begin() as session:
        await session.execute(
            _FILL, {"runs": RUNS, "queue": stores.settings.queues.default, "operator": OPERATOR}
        )
    engine = create_engine(stores.settings.database)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE job_runs"))
    finally:
        await engine.dispose()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def api_child(stores: BenchStores, key_file: Path) -> AsyncIterator[str]:
    """``opsjobs api`` in a child process on a free port, against the bench stores."""
    port = free_port()
    env = {
        **child_env(stores.settings),
        "OPSJOBS_SECRETS__KEY_FILE": str(key_file),
        "OPSJOBS_API__PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", "--log-level", "WARNING", "api", env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("opsjobs api did not start")
                await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        await process.wait()


def _row(label: str, measured: Measured) -> tuple[str, str]:
    return (
        label,
        f"p50 {measured.p50_ms:6.2f} ms   p99 {measured.p99_ms:6.2f} ms   "
        f"{measured.per_second:7.1f} req/s",
    )


async def run(stores: BenchStores) -> bool:
    await fill_runs(stores)
    _, token = await create_token(
        stores.sessions, name="bench", username=OPERATOR, role=Role.OPERATOR, created_by="bench"
    )
    _, admin = await create_token(
        stores.sessions, name="admin", username="root", role=Role.ADMIN, created_by="bench"
    )
    key_file = Path(tempfile.mkdtemp(prefix="opsjobs-bench-keys-")) / "keys.json"
    atexit.register(shutil.rmtree, key_file.parent, ignore_errors=True)
    await asyncio.to_thread(KeyRing.load, key_file, create=True)
    rows: list[tuple[str, str]] = []
    async with api_child(stores, key_file) as url:
        # One client shows the service time; LIST_CONCURRENCY clients add queueing.
        for clients in (1, LIST_CONCURRENCY):
            lists = {"requests": LIST_REQUESTS, "concurrency": clients}
            health = await measure(url, token, "GET", "/healthz", **lists)
            unfiltered = await measure(url, token, "GET", UNFILTERED, **lists)
            filtered = await measure(url, token, "GET", FILTERED, **lists)
            as_admin = await measure(url, admin, "GET", UNFILTERED, **lists)
            rows += [
                _row(f"baseline GET /healthz x{clients}", health),
                _row(f"GET {UNFILTERED} x{clients}", unfiltered),
                _row(f"GET {FILTERED} x{clients}", filtered),
                _row(f"GET {UNFILTERED} x{clients} (admin)", as_admin),
            ]
        # The console's pages include admin ones: an admin signs in.
        console_rows, console_met = await measure_pages(url, admin)
        posts = {"requests": POST_REQUESTS, "concurrency": POST_CONCURRENCY}
        health_burst = await measure(url, token, "GET", "/healthz", **posts)
        created = await measure(url, token, "POST", "/api/job-runs", **posts)
    rows += [
        _row(f"baseline GET /healthz x{POST_CONCURRENCY}", health_burst),
        _row(f"POST /api/job-runs x{POST_CONCURRENCY}", created),
        (
            "targets",
            f"list p99 <= {P99_TARGET_MS} ms (x{LIST_CONCURRENCY}), POST >= {POST_TARGET_PER_S}/s",
        ),
    ]
    report(
        f"API: {RUNS} runs in the database (12% private), one `opsjobs api` process, "
        f"{os.cpu_count()} cores; xN = N concurrent clients, an operator unless (admin)",
        rows,
    )
    report(f"Console: each page with {RUNS} runs in the database, same server", console_rows)
    return (
        console_met
        and unfiltered.p99_ms <= P99_TARGET_MS
        and filtered.p99_ms <= P99_TARGET_MS
        and created.per_second >= POST_TARGET_PER_S
    )

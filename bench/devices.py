"""Device fan-out: ``run_commands`` over 1,000 simulated devices against the ideal wall time,
and the worker's peak memory.

The Nautobot and SSH labs run in one child process (``bench.devices_lab_server``) and the
worker in another (``opsjobs worker --burst`` on the devices queue), so the figure is the
real worker's: target resolution through Nautobot, one SSH session per device
(handshake, login, prompt, paging off), the commands, and one target row per device.

* ideal = devices × commands × latency / concurrency (the simulated devices answer each
  command after ``LATENCY``; the handshake and everything else are overhead);
* run time = the run row's ``started_at`` → ``finished_at``;
* peak RSS = the worker process's ``VmHWM`` (Linux), read while it runs.

An SSH handshake costs about 2.5 ms of CPU on each side (key exchange, host-key
signature, cipher set-up), 2.5 s per 1,000 devices for the worker alone, so the number of
commands per device decides how much of the run is waiting on devices; it is printed.
With 100 sessions answering every 100 ms the worker's one event loop handles about 1,000
commands a second whatever their number per device; at 10 commands per device it also
opens 100 sessions a second and is busy most of the time (the ratio then measures CPU
queueing on a 2-core machine, about 1.8×); at 30 the fan-out itself is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.harness import BenchStores, child_env, report
from service.access.credentials import seal
from service.db.device_models import CommandTemplate
from service.db.models import JobRun, JobRunTarget, TargetStatus, TriggeredBy
from service.db.security_models import Credential, CredentialType
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.secrets import KeyRing, KeyStore

DEVICES = 1000
COMMANDS = 30
LATENCY = 0.1
CONCURRENCY = 100
TARGET_RATIO = 1.25
TARGET_RSS_MB = 300
RSS_POLL_S = 0.1


@asynccontextmanager
async def lab_process() -> AsyncIterator[dict[str, str]]:
    """Start the lab child; yields its Nautobot URL and the device login; stops it on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.devices_lab_server",
        str(DEVICES),
        str(LATENCY),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        if not line:
            raise RuntimeError("the device lab process exited before serving")
        lab: dict[str, str] = json.loads(line)
        yield lab
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set (``VmHWM``) in KiB, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


async def run_worker(env: dict[str, str], queue: str) -> tuple[float, int]:
    """Run a burst worker to completion; its wall time and the peak RSS seen (KiB)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "--log-level",
        "WARNING",
        "worker",
        "--queue",
        queue,
        "--burst",
        env=env,
    )
    peak = 0
    while process.returncode is None:
        peak = max(peak, peak_rss_kib(process.pid) or 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=RSS_POLL_S)
    if process.returncode != 0:
        raise RuntimeError(f"the worker exited with {process.returncode}")
    return time.perf_counter() - started, peak


async def prepare(stores: BenchStores, keys: KeyStore, lab: dict[str, str]) -> tuple[int, int]:
    """Store the device login and the command template; their ids."""
    key_id, ciphertext, fields = seal(keys, {"password": lab["password"]})
    template = "{% for i in range(" + str(COMMANDS) + ") %}show version\n{% endfor %}"
    async with stores.sessions.begin() as session:
        credential = Credential(
            name="bench devices",
            type=CredentialType.SSH_PASSWORD.value,
            username=lab["username"],
            key_id=key_id,
            ciphertext=ciphertext,
            secret_fields=fields,
        )
        command_template = CommandTemplate(name="bench", content=template)
        session.add_all([credential, command_template])
    return credential.id, command_template.id


async def measure(stores: BenchStores) -> dict[str, Any]:
    settings = stores.settings
    queue = settings.queues.devices
    with tempfile.TemporaryDirectory(prefix="opsjobs-bench-devices-") as tmp:
        key_file = Path(tmp) / "keys.json"
        keys = KeyStore(await asyncio.to_thread(KeyRing.load, key_file, create=True))
        async with lab_process() as lab:
            credential_id, template_id = await prepare(stores, keys, lab)
            run_id = await lifecycle.enqueue_run(
                stores.sessions,
                stores.redis,
                RunRequest(
                    job_type="run_commands",
                    job_name="bench run_commands",
                    queue=queue,
                    parameters={
                        "targets": {"all": True},
                        "command_template_id": template_id,
                        "concurrency": CONCURRENCY,
                    },
                    triggered_by=TriggeredBy.API,
                    credential_id=credential_id,
                ),
            )
            env = {
                **child_env(settings),
                "OPSJOBS_SECRETS__KEY_FILE": str(key_file),
                "OPSJOBS_NAUTOBOT__URL": lab["nautobot"],
                "OPSJOBS_NAUTOBOT__TOKEN": lab["token"],
                "OPSJOBS_NAUTOBOT__CACHE_INTERVAL": "0",
                "OPSJOBS_SSH__KNOWN_HOSTS": str(Path(tmp) / "known_hosts"),
                "OPSJOBS_SSH__ACCEPT_NEW": "true",
                "OPSJOBS_SSH__MAX_SESSIONS": str(CONCURRENCY),
                # 100 device tasks each write their target row: more than the default 10.
                "OPSJOBS_DATABASE__POOL_SIZE": "40",
            }
            worker_wall, peak_kib = await run_worker(env, queue)
    async with stores.sessions() as session:
        run = await session.get(JobRun, run_id)
        succeeded = await session.scalar(
            select(func.count()).where(
                JobRunTarget.run_id == run_id,
                JobRunTarget.status == TargetStatus.SUCCEEDED.value,
            )
        )
    if run is None or run.started_at is None or run.finished_at is None:
        raise RuntimeError(f"run {run_id} did not finish")
    if run.status != "completed" or succeeded != DEVICES:
        raise RuntimeError(f"run {run_id}: {run.status}, {succeeded} of {DEVICES}: {run.summary}")
    return {
        "run": (run.finished_at - run.started_at).total_seconds(),
        "worker": worker_wall,
        "peak_mb": peak_kib / 1024,
    }


async def run(stores: BenchStores) -> bool:
    figures = await measure(stores)
    ideal = DEVICES * COMMANDS * LATENCY / CONCURRENCY
    ratio = figures["run"] / ideal
    report(
        f"device fan-out: run_commands over {DEVICES} simulated devices, {COMMANDS} commands "
        f"per device, {LATENCY * 1000:g} ms per command, concurrency {CONCURRENCY}",
        [
            ("ideal (devices × commands × latency / concurrency)", f"{ideal:8.2f} s"),
            ("run (started → finished, resolution included)", f"{figures['run']:8.2f} s"),
            ("ratio", f"{ratio:8.2f}  (target <= {TARGET_RATIO})"),
            ("worker process (start → exit)", f"{figures['worker']:8.2f} s"),
            ("worker peak RSS", f"{figures['peak_mb']:8.1f} MB  (target <= {TARGET_RSS_MB})"),
        ],
    )
    return ratio <= TARGET_RATIO and figures["peak_mb"] <= TARGET_RSS_MB

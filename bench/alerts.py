"""Alert latency: from a run's end (``finished_at`` in PostgreSQL) to the webhook receiver,
p50/p99 over 1,000 failed runs, next to the run pipeline's own latency for the same runs
(``queued_at`` → ``finished_at``).

A default-queue worker runs the runs and a scheduler-queue worker runs the notify cron
(every ``notify.interval``), both as child processes; the receiver is the lab's webhook
receiver in this process, checking every signature. Runs are queued at a steady 25/s, as
failures arrive in production, not as one burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from datetime import datetime

from sqlalchemy import func, select

from bench.harness import BenchStores, report
from bench.pipeline import polling_worker
from lab.alert_sink import AlertSink
from service.db.models import JobRun, TriggeredBy
from service.db.notify_models import ChannelType, NotificationChannel, NotificationRule
from service.notify.senders import seal_secret
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from service.secrets import KeyRing, KeyStore

RUNS = 1000
PER_BURST = 5
BURST_EVERY_S = 0.2
SECRET = "bench-webhook-secret-0123456789"
# The alert may wait for the next notify pass (one interval) and that pass's sends.
TARGET_P99_OVER_INTERVAL = 2.0


async def _seed_rule(stores: BenchStores, url: str) -> None:
    ring = await asyncio.to_thread(KeyRing.load, stores.settings.secrets.key_file)
    key_id, ciphertext = seal_secret(KeyStore(ring), SECRET)
    async with stores.sessions.begin() as session:
        channel = NotificationChannel(
            name="bench receiver",
            type=ChannelType.WEBHOOK.value,
            is_global=True,
            config={"url": url, "headers": {}, "verify_tls": True},
            key_id=key_id,
            ciphertext=ciphertext,
        )
        session.add(channel)
        await session.flush()
        session.add(
            NotificationRule(
                name="bench failures",
                events=["run.failed"],
                channel_ids=[channel.id],
                is_global=True,
            )
        )


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(stores: BenchStores) -> bool:
    settings = stores.settings
    received: dict[int, float] = {}
    async with AlertSink() as sink:
        sink.secrets["bench"] = SECRET
        await _seed_rule(stores, sink.hook_url("bench"))
        # The runs fail on purpose: their tracebacks (logged as errors) are not news here.
        default = ["service.cli", "--log-level", "CRITICAL", "worker", "--queue"]
        async with (
            polling_worker(
                stores,
                stores.redis.keyspace.queue(settings.queues.default),
                [*default, settings.queues.default],
            ),
            polling_worker(
                stores,
                stores.redis.keyspace.queue(settings.queues.scheduler),
                [*default, settings.queues.scheduler],
            ),
        ):
            request = RunRequest(
                job_type="diag.fail",
                job_name="bench failure",
                queue=settings.queues.default,
                parameters={"message": "bench"},
                triggered_by=TriggeredBy.API,
            )
            for _ in range(RUNS // PER_BURST):
                await lifecycle.enqueue_runs(stores.sessions, stores.redis, [request] * PER_BURST)
                await asyncio.sleep(BURST_EVERY_S)
            async with asyncio.timeout(300):
                while len(sink.webhooks) < RUNS:
                    sink.webhook_arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sink.webhook_arrived.wait(), 1)
        for hook in sink.webhooks:
            received.setdefault(
                int(hook.body["run_id"]), datetime.fromisoformat(hook.received_at).timestamp()
            )
        signed = all(hook.signature_ok for hook in sink.webhooks)
    async with stores.sessions() as session:
        rows = (
            await session.execute(
                select(
                    JobRun.id,
                    func.extract("epoch", JobRun.queued_at),
                    func.extract("epoch", JobRun.finished_at),
                ).where(JobRun.job_name == "bench failure")
            )
        ).all()
    alert = [
        received[run_id] - float(finished) for run_id, _, finished in rows if run_id in received
    ]
    pipeline = [float(finished) - float(queued) for _, queued, finished in rows]
    duplicates = len(sink.webhooks) - len(received)
    target = TARGET_P99_OVER_INTERVAL * settings.notify.interval + _percentile(pipeline, 99)
    alert_p99 = _percentile(alert, 99)

    def p50_p99(values: list[float]) -> str:
        p50, p99 = _percentile(values, 50) * 1000, _percentile(values, 99) * 1000
        return f"{p50:7.0f} ms / {p99:7.0f} ms"

    report(
        f"alert latency: {RUNS} failed diag.fail runs at {PER_BURST / BURST_EVERY_S:.0f}/s, "
        f"run end → signed webhook received (notify.interval={settings.notify.interval:g}s)",
        [
            ("run pipeline p50 / p99 (queued → end)", p50_p99(pipeline)),
            ("alert p50 / p99 (end → receiver)", p50_p99(alert)),
            (
                "alerts received / duplicates / bad signatures",
                f"{len(received)} / {duplicates} / {0 if signed else 'some'}",
            ),
            (
                "target",
                f"alert p99 <= {TARGET_P99_OVER_INTERVAL:g} x notify.interval + pipeline p99"
                f" = {target * 1000:.0f} ms",
            ),
        ],
    )
    return len(received) == RUNS and duplicates == 0 and signed and alert_p99 <= target

"""``check_cluster``: the health of NiFi clusters as their coordinators see it.

One target per cluster, checked concurrently. From a member connected to the cluster:
connected and total nodes (``/flow/cluster/summary``) and every node's state, address,
heartbeat age, active threads and queued totals (``/controller/cluster``). A node out of
the cluster (disconnected, disconnecting, offloading, offloaded) is critical, one
connecting or with a stale heartbeat a warning; a cluster no connected member answers for
is critical with the error. A disconnected member is never asked for the cluster's view.
"""

from __future__ import annotations

from typing import Any

from executors.base import (
    Executor,
    JobContext,
    JobResult,
    Target,
    TargetResult,
    worst_outcome,
)
from executors.check_queues import cluster_slots, connect, resolve_named_clusters
from service.db.models import Outcome
from service.nifi.cluster_checks import Answered, ClusterHealthResult, check_cluster_health
from service.nifi.configs import CheckClusterConfig
from service.nifi.stored import CredentialCache

Config = CheckClusterConfig


def _outcome(result: ClusterHealthResult) -> Outcome:
    return Outcome(result.status)


async def execute(job: JobContext[Config]) -> JobResult:
    """Judge every cluster's health; the worst cluster decides the outcome."""
    config = job.config
    credentials = CredentialCache(job.services.sessions, job.services.keys)
    finished: dict[str, dict[str, Any]] = {}

    async def check(target: Target) -> TargetResult:
        cluster = await connect(target, credentials)
        if isinstance(cluster, str):
            result = ClusterHealthResult(Answered(target.key, target.name, error=cluster), None)
        else:
            result = await check_cluster_health(
                job.services.nifi, cluster, max_heartbeat_age=config.max_heartbeat_age
            )
        data = result.to_dict()
        finished[target.key] = data
        # A cancelled or failed run keeps the clusters judged so far.
        job.checkpoint({"clusters": list(finished.values())})
        return TargetResult(outcome=_outcome(result), data=data, error=result.answer.error)

    outcomes = await job.fan_out(
        check, concurrency=config.concurrency, slots=cluster_slots(job.services)
    )
    if not outcomes:
        return JobResult(outcome=Outcome.UNKNOWN, summary="no NiFi clusters to check")
    verdicts = [outcome.result.outcome for outcome in outcomes]
    counts = {outcome.value: verdicts.count(outcome) for outcome in Outcome}
    clusters = [finished[t.key] for t in job.targets if t.key in finished]
    problems = [problem for cluster in clusters for problem in cluster.get("problems", ())]
    summary = (
        f"{len(clusters)} cluster(s): {counts['ok']} ok, {counts['warning']} warning, "
        f"{counts['critical']} critical"
    )
    if problems:
        summary += f"; {problems[0]}" + (
            f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        )
    return JobResult(
        outcome=worst_outcome(verdicts),
        summary=summary,
        data={"summary": counts, "clusters": clusters},
    )


EXECUTOR = Executor(
    job_type="check_cluster",
    label="Check NiFi cluster health",
    description=(
        "Connected and total nodes, each node's state, heartbeat and queue; critical when "
        "a node is disconnected or offloading, warning when one is connecting."
    ),
    config=Config,
    execute=execute,
    resolve_targets=resolve_named_clusters,
)

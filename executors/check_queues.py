"""``check_queues``: connection backlog traffic lights on NiFi clusters.

One target per cluster, checked concurrently (``concurrency``). A cluster that cannot be
read is red with the error; the others are unaffected. Each target row holds its
cluster's verdict — which member answered, which were skipped and why, and the cluster's
health (a node out of the cluster makes it red); the run result is the compact report
(clusters with only their yellow and red connections unless ``include_all_connections``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from executors.base import (
    Executor,
    JobContext,
    JobResult,
    ResolveContext,
    Target,
    TargetResult,
    slot_per_target,
)
from executors.services import Services
from service.db.models import Outcome
from service.errors import OpsjobsError
from service.nifi.checks import check_cluster_queues
from service.nifi.configs import CheckQueuesConfig
from service.nifi.endpoints import NifiCluster
from service.nifi.queue_check import Colour, worst
from service.nifi.queue_report import ClusterQueueResult, summarise, unreachable_cluster
from service.nifi.stored import CredentialCache, StoredCluster, build_cluster, resolve_clusters
from service.queue.leases import Slot

Config = CheckQueuesConfig

_CLUSTER = "cluster"


class NamesClusters(Protocol):
    """A NiFi job type's configuration naming clusters (None: every cluster)."""

    @property
    def cluster_ids(self) -> Sequence[str] | None: ...


async def cluster_targets(ctx: ResolveContext, cluster_ids: Sequence[str] | None) -> list[Target]:
    """The named NiFi clusters as targets (all when None); an unknown id fails the run.
    Every NiFi job type resolves its targets so."""
    clusters = await resolve_clusters(ctx.services.sessions, cluster_ids)
    return [
        Target(key=str(cluster.id), name=cluster.name, data={_CLUSTER: cluster})
        for cluster in clusters
    ]


def cluster_slots(services: Services) -> Callable[[Target], list[Slot]]:
    """Each cluster's slot: at most ``leases.per_nifi_cluster`` checks of one cluster at
    once over every worker, whatever the NiFi job type."""
    return slot_per_target("nifi-cluster", services.settings.leases.per_nifi_cluster)


async def resolve_named_clusters(ctx: ResolveContext, config: NamesClusters) -> list[Target]:
    """The clusters ``cluster_ids`` names (all when it is None); an unknown id fails the run."""
    return await cluster_targets(ctx, config.cluster_ids)


async def connect(target: Target, credentials: CredentialCache) -> NifiCluster | str:
    """The target's cluster with its secrets decrypted, or why it cannot be built (no
    members, a missing credential, a stored keystore that cannot be read)."""
    stored: StoredCluster = target.data[_CLUSTER]
    try:
        return await build_cluster(stored, credentials)
    except OpsjobsError as exc:
        return exc.message


async def execute(job: JobContext[Config]) -> JobResult:
    """Check every cluster's queues and roll the colours up, worst first."""
    config = job.config
    thresholds = config.thresholds()
    credentials = CredentialCache(job.services.sessions, job.services.keys)
    results: dict[str, ClusterQueueResult] = {}
    finished: list[dict[str, Any]] = []
    tally = dict.fromkeys(Colour, 0)
    thresholds_data = thresholds.to_dict()

    async def check(target: Target) -> TargetResult:
        cluster = await connect(target, credentials)
        if isinstance(cluster, str):
            result = unreachable_cluster(
                cluster_id=target.key, cluster_name=target.name, error=cluster
            )
        else:
            result = await check_cluster_queues(
                job.services.nifi,
                cluster,
                thresholds,
                include_all_connections=config.include_all_connections,
                scope=config.scope,
                max_heartbeat_age=config.max_heartbeat_age,
            )
        results[target.key] = result
        data = result.to_dict()
        finished.append(data)
        # A cancelled or failed run keeps the clusters checked so far, in the shape of the
        # final report (counted incrementally: re-summarising each time would be quadratic).
        tally[result.status] += 1
        job.checkpoint(
            {
                "overall_status": worst(c for c, n in tally.items() if n).value,
                "summary": {colour.value: count for colour, count in tally.items()},
                "thresholds": thresholds_data,
                "clusters": finished,
            }
        )
        return TargetResult(outcome=Outcome(result.outcome), data=data, error=result.error)

    slots = cluster_slots(job.services)
    for outcome in await job.fan_out(check, concurrency=config.concurrency, slots=slots):
        target = outcome.target
        if target.key not in results:  # the check itself raised: red, never left out
            results[target.key] = unreachable_cluster(
                cluster_id=target.key,
                cluster_name=target.name,
                error=outcome.result.error or "check failed",
            )
    report = summarise((results[t.key] for t in job.targets if t.key in results), thresholds)
    counts = report.summary
    if not report.clusters:
        # "All clusters" of an empty inventory checked nothing: not the same as all green.
        return JobResult(
            outcome=Outcome.UNKNOWN, summary="no NiFi clusters to check", data=report.to_dict()
        )
    return JobResult(
        outcome=Outcome(report.outcome),
        summary=(
            f"{len(report.clusters)} cluster(s): {counts.green} green, "
            f"{counts.yellow} yellow, {counts.red} red"
        ),
        data=report.to_dict(),
    )


EXECUTOR = Executor(
    job_type="check_queues",
    label="Check NiFi queues",
    description=(
        "Traffic lights on NiFi connection backlogs (flow files, bytes, both, or the "
        "back-pressure use NiFi computes) per cluster or per node; red when a cluster "
        "cannot be reached or a node is out of it."
    ),
    config=Config,
    execute=execute,
    resolve_targets=resolve_named_clusters,
)

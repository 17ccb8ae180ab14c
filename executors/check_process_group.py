"""``check_process_group`` (also ``check_progress_group``): a process group's state
matches the expected status.

One target, the cluster. The group (and its direct children, or with ``recursive``
every descendant) must have zero of the counters the expected status rules out. A
cluster that cannot be reached, or that does not know the group, is a failed check:
outcome critical with the error.
"""

from __future__ import annotations

from typing import Any

from executors.base import (
    Executor,
    JobContext,
    JobResult,
    ResolveContext,
    Target,
    TargetResult,
)
from executors.check_queues import cluster_slots, cluster_targets, connect
from service.db.models import Outcome
from service.errors import OpsjobsError
from service.nifi.checks import check_process_group
from service.nifi.configs import CheckProcessGroupConfig
from service.nifi.stored import CredentialCache

Config = CheckProcessGroupConfig


async def resolve_targets(ctx: ResolveContext, config: Config) -> list[Target]:
    """The one configured cluster; an unknown id fails the run."""
    return await cluster_targets(ctx, [config.cluster_id])


async def execute(job: JobContext[Config]) -> JobResult:
    """Fetch the group (and children) from the first member that answers and judge it."""
    config = job.config
    credentials = CredentialCache(job.services.sessions, job.services.keys)

    async def check(target: Target) -> TargetResult:
        cluster = await connect(target, credentials)
        if isinstance(cluster, str):
            return TargetResult(
                outcome=Outcome.CRITICAL, data=_not_checked(target, config), error=cluster
            )
        try:
            report = await check_process_group(job.services.nifi, cluster, config)
        except OpsjobsError as exc:
            return TargetResult(
                outcome=Outcome.CRITICAL, data=_not_checked(target, config), error=exc.message
            )
        return TargetResult(outcome=Outcome(report.outcome), data=report.to_dict())

    slots = cluster_slots(job.services)
    outcomes = await job.fan_out(check, concurrency=1, slots=slots)
    if not outcomes:
        return JobResult(outcome=Outcome.UNKNOWN, summary="no cluster to check")
    result = outcomes[0].result
    data = dict(result.data) or _not_checked(outcomes[0].target, config)
    if result.error is not None:
        data["error"] = result.error
        summary = f"process group {config.process_group_id} not checked: {result.error}"
        return JobResult(outcome=Outcome.CRITICAL, summary=summary, data=data)
    verdict = "passed" if data["passed"] else "failed"
    return JobResult(
        outcome=result.outcome,
        summary=(
            f"process group {data['process_group_name']} {verdict} "
            f"(expected {config.expected_status.value})"
        ),
        data=data,
    )


def _not_checked(target: Target, config: Config) -> dict[str, Any]:
    return {
        "passed": False,
        "cluster_id": target.key,
        "process_group_id": config.process_group_id,
        "expected_status": config.expected_status.value,
    }


EXECUTOR = Executor(
    job_type="check_process_group",
    label="Check NiFi process group",
    description=(
        "A process group (and its children) is Running, Stopped, Disabled or Enabled as "
        "expected; violations name the counters that are not zero."
    ),
    config=Config,
    execute=execute,
    resolve_targets=resolve_targets,
    aliases=("check_progress_group",),
)

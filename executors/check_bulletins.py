"""``check_bulletins``: errors and warnings NiFi posted on its bulletin board.

One target per cluster. The whole board is read from a member connected to the cluster
and filtered here (level, source name, process group). A run fired by a schedule reports
only the bulletins that schedule has not seen: the schedule's cursor per cluster and
node (:mod:`service.nifi.bulletin_cursors`) moves past every bulletin read, whether it
passed the filter or not. Other runs report what the board holds (its last five
minutes). ERROR bulletins make the run critical, WARNING ones a warning.
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
from service.nifi.bulletin_cursors import advance_cursor, schedule_of_run
from service.nifi.bulletins import Level
from service.nifi.cluster_checks import (
    Answered,
    BulletinReport,
    read_bulletins,
    report_bulletins,
)
from service.nifi.configs import CheckBulletinsConfig
from service.nifi.stored import CredentialCache

Config = CheckBulletinsConfig


async def execute(job: JobContext[Config]) -> JobResult:
    """Read every cluster's board and report what is new and wanted."""
    config = job.config
    services = job.services
    credentials = CredentialCache(services.sessions, services.keys)
    selection = config.selection()
    schedule_id = await schedule_of_run(services.sessions, job.run_id)
    finished: dict[str, dict[str, Any]] = {}

    async def report(target: Target) -> BulletinReport:
        cluster = await connect(target, credentials)
        if isinstance(cluster, str):
            return BulletinReport(Answered(target.key, target.name, error=cluster))
        read = await read_bulletins(services.nifi, cluster)
        if read.board is None:
            return BulletinReport(read.answer)
        if schedule_id is None:
            return report_bulletins(
                read.answer, read.board, selection, max_reported=config.max_reported
            )
        step = await advance_cursor(services.sessions, schedule_id, int(target.key), read.board)
        return report_bulletins(
            read.answer,
            step.fresh,
            selection,
            max_reported=config.max_reported,
            may_have_missed=step.may_have_missed,
            first_look=step.since_last_seconds is None,
        )

    async def check(target: Target) -> TargetResult:
        result = await report(target)
        data = result.to_dict()
        finished[target.key] = data
        job.checkpoint({"clusters": list(finished.values())})
        return TargetResult(outcome=Outcome(result.status), data=data, error=result.answer.error)

    outcomes = await job.fan_out(
        check, concurrency=config.concurrency, slots=cluster_slots(job.services)
    )
    if not outcomes:
        return JobResult(outcome=Outcome.UNKNOWN, summary="no NiFi clusters to check")
    clusters = [finished[t.key] for t in job.targets if t.key in finished]
    levels = {
        level.value: sum(c.get("levels", {}).get(level.value, 0) for c in clusters)
        for level in Level
    }
    reported = sum(c.get("reported", 0) for c in clusters)
    unread = sum(1 for c in clusters if "error" in c)
    kinds = ", ".join(f"{n} {name}" for name, n in levels.items() if n)
    summary = f"{len(clusters)} cluster(s): {reported} new bulletin(s)" + (
        f" ({kinds})" if kinds else ""
    )
    if unread:
        summary += f"; {unread} cluster(s) not read"
    return JobResult(
        outcome=worst_outcome([outcome.result.outcome for outcome in outcomes]),
        summary=summary,
        data={
            "reported": reported,
            "levels": levels,
            "min_level": config.min_level.value,
            "since": "previous run of the schedule" if schedule_id is not None else "board",
            "clusters": clusters,
        },
    )


EXECUTOR = Executor(
    job_type="check_bulletins",
    label="Check NiFi bulletins",
    description=(
        "Bulletins posted since the schedule's previous run, filtered by level, source "
        "and process group; critical on ERROR, warning on WARNING."
    ),
    config=Config,
    execute=execute,
    resolve_targets=resolve_named_clusters,
)

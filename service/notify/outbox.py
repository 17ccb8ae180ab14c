"""The outbox of run facts: written in the statement or transaction that ends a run.

Only runs that can matter to a rule get a fact: a failed run (``run.failed``/``run.lost``
for every rule), or a finished run of a template or schedule (outcome changes, recoveries,
schedule health). A finished ad-hoc run that did not fail matters to no rule, so the hot
path of short ad-hoc runs inserts nothing. Rules are matched later, by the delivery cron.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Insert, and_, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CTE

from service.db.models import RunStatus
from service.db.notify_models import NotificationOutbox


class FactKind(enum.StrEnum):
    FINISHED = "finished"
    # The reaper failed the run: its worker was lost and no retry was left.
    LOST = "lost"


def matters(ended: CTE) -> ColumnElement[bool]:
    """Whether a run that just ended (columns ``status``, ``template_id``, ``schedule_id``)
    can matter to any rule."""
    return and_(
        # Literals, not a list: an expanding IN would be re-rendered at every execution.
        ended.c.status.in_([literal(RunStatus.COMPLETED.value), literal(RunStatus.FAILED.value)]),
        or_(
            ended.c.status == RunStatus.FAILED.value,
            ended.c.template_id.is_not(None),
            ended.c.schedule_id.is_not(None),
        ),
    )


def facts_from(ended: CTE, kind: FactKind = FactKind.FINISHED) -> Insert:
    """INSERT of one fact per row of ``ended`` (an UPDATE … RETURNING as a CTE) that matters."""
    return insert(NotificationOutbox).from_select(
        ["run_id", "kind"],
        select(ended.c.id, literal(kind.value)).where(matters(ended)),
        include_defaults=False,
    )


async def record_facts(session: AsyncSession, run_ids: Sequence[int], kind: FactKind) -> None:
    """Add facts for runs the caller ended in this transaction (rules decide if they matter)."""
    if run_ids:
        await session.execute(
            insert(NotificationOutbox),
            [{"run_id": run_id, "kind": kind.value} for run_id in run_ids],
        )

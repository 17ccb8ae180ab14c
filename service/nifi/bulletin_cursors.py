"""Where a schedule's ``check_bulletins`` left off on each cluster.

The cursor row of (schedule, cluster) is created if missing and locked while a run moves
it, so two runs of one schedule never report the same bulletin; the NiFi request happens
before, outside the transaction. Runs without a schedule have no cursor: they report
what the board holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from service.db.engine import SessionFactory
from service.db.models import JobRun
from service.db.nifi_models import NifiBulletinCursor
from service.nifi.bulletins import BOARD_RETENTION_SECONDS, Bulletin, newer_than


async def schedule_of_run(sessions: SessionFactory, run_id: int) -> int | None:
    """The schedule that fired the run, if any."""
    async with sessions() as session:
        return await session.scalar(select(JobRun.schedule_id).where(JobRun.id == run_id))


@dataclass(frozen=True, slots=True)
class CursorStep:
    """The bulletins past the cursor, and how long ago the cursor last moved (None on
    the schedule's first look at the cluster)."""

    fresh: list[Bulletin]
    since_last_seconds: float | None

    @property
    def may_have_missed(self) -> bool:
        """NiFi forgets bulletins after five minutes: a longer gap may hide some."""
        return (
            self.since_last_seconds is not None
            and self.since_last_seconds > BOARD_RETENTION_SECONDS
        )


async def advance_cursor(
    sessions: SessionFactory, schedule_id: int, cluster_id: int, board: list[Bulletin]
) -> CursorStep:
    """Move the (schedule, cluster) cursor past ``board``; returns what was new."""
    key = (
        NifiBulletinCursor.schedule_id == schedule_id,
        NifiBulletinCursor.cluster_id == cluster_id,
    )
    async with sessions.begin() as session:
        created = await session.scalar(
            insert(NifiBulletinCursor)
            .values(schedule_id=schedule_id, cluster_id=cluster_id, last_ids={})
            .on_conflict_do_nothing()
            .returning(NifiBulletinCursor.schedule_id)
        )
        row = (
            await session.execute(
                select(
                    NifiBulletinCursor.last_ids,
                    func.extract("epoch", func.now() - NifiBulletinCursor.updated_at),
                )
                .where(*key)
                .with_for_update()
            )
        ).one()
        last_ids = {str(node): int(last) for node, last in row[0].items()}
        fresh, moved = newer_than(board, last_ids)
        await session.execute(
            update(NifiBulletinCursor).where(*key).values(last_ids=moved, updated_at=func.now())
        )
    return CursorStep(fresh, None if created is not None else float(row[1]))

"""Notification records age out with the runs: processed run facts, and events (with their
deliveries and attempts) older than the cut-off whose deliveries are all settled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnExpressionArgument, delete, exists, select

from service.db.engine import SessionFactory
from service.db.notify_models import NotificationDelivery, NotificationEvent, NotificationOutbox


async def purge_notifications(sessions: SessionFactory, cutoff: datetime, batch: int) -> int:
    """Delete what is older than ``cutoff`` in batches; returns how many facts and events went."""
    facts = [NotificationOutbox.processed, NotificationOutbox.created_at < cutoff]
    # A delivery still to be sent keeps its event, however old.
    settled = [
        NotificationEvent.occurred_at < cutoff,
        ~exists().where(
            NotificationDelivery.event_id == NotificationEvent.id,
            NotificationDelivery.status.in_(["pending", "sending"]),
        ),
    ]
    return await _purge(sessions, NotificationOutbox, facts, batch) + await _purge(
        sessions, NotificationEvent, settled, batch
    )


async def _purge(
    sessions: SessionFactory,
    table: type[NotificationOutbox] | type[NotificationEvent],
    conditions: Sequence[ColumnExpressionArgument[bool]],
    batch: int,
) -> int:
    deleted = 0
    while True:
        chosen = (
            select(table.id)
            .where(*conditions)
            .order_by(table.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with sessions.begin() as session:
            result = await session.execute(
                delete(table).where(table.id.in_(chosen)).returning(table.id)
            )
            gone = len(result.all())
        deleted += gone
        if gone < batch:
            return deleted

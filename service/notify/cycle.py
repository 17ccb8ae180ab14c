"""One notification pass: run facts → events, silent schedules → events, events →
deliveries (one transaction, one pass at a time), then sending what is due."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select

from service.notify.delivery import NotifyStores, deliver_due
from service.notify.routing import route_events
from service.notify.schedule_health import mark_silent_schedules
from service.notify.verdicts import interpret_facts

# One interpreter at a time over the whole cluster: verdicts depend on the order of facts
# and deliveries are numbered in the order their events were routed.
INTERPRET_LOCK = 0x6F706A6F62730001
# Rounds of one pass at most (each interprets and routes a batch, then sends).
MAX_ROUNDS = 100


@dataclass(frozen=True)
class PassReport:
    facts: int
    unhealthy: int
    routed: int
    delivered: int


async def notification_pass(stores: NotifyStores) -> PassReport:
    """Interpret, route and send, again while there is work, for about one interval (the
    cron's period); safe to run from several workers at once."""
    settings = stores.settings.notify
    until = time.monotonic() + settings.interval
    facts = unhealthy = routed = delivered = 0
    for round_ in range(MAX_ROUNDS):
        async with stores.sessions.begin() as session:
            locked = await session.scalar(select(func.pg_try_advisory_xact_lock(INTERPRET_LOCK)))
            read = moved = 0
            if locked:
                read = await interpret_facts(session, stores.settings)
                if round_ == 0:
                    unhealthy = await mark_silent_schedules(session, stores.settings)
                moved = await route_events(session, settings.batch)
        sent = await deliver_due(stores)
        facts, routed, delivered = facts + read, routed + moved, delivered + sent
        if not (read or moved or sent) or time.monotonic() >= until:
            break
    return PassReport(facts=facts, unhealthy=unhealthy, routed=routed, delivered=delivered)

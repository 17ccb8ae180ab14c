"""Maintenance windows: when a change freeze holds, and what it covers.

A window is one-off (``start_at`` ≤ t < ``end_at``) or recurring: it opens at each fire of
its cron expression in its IANA zone (with the schedules' wall-clock rules for DST) and
stays open ``duration_minutes``. It covers runs whose template, schedule and job type are
in its scopes (a scope left out is "all"); a window with an ``inventory_id`` covers the
devices that inventory selects instead of whole runs, and those are skipped inside a run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from service.db.engine import SessionFactory
from service.db.notify_models import MaintenanceWindow
from service.errors import Conflict
from service.runs.commands import ManualRunGate
from service.runs.lifecycle import RunRequest
from service.scheduling.specs import ScheduleSpec, next_fire
from service.scheduling.stored import validated_spec

# Seconds an API process reuses the windows it read: run requests are a hot path, and a
# window's change reaches every process within this (writes in the same process at once).
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Window:
    """A window as matching needs it (pure, no database)."""

    id: int
    name: str
    start_at: datetime | None = None
    end_at: datetime | None = None
    recurrence: ScheduleSpec | None = None
    duration: timedelta | None = None
    template_ids: frozenset[int] | None = None
    schedule_ids: frozenset[int] | None = None
    job_types: frozenset[str] | None = None
    inventory_id: int | None = None

    @classmethod
    def of(cls, row: MaintenanceWindow) -> Window:
        recurrence = None
        if row.cron_expression is not None:
            recurrence = recurrence_spec(row.cron_expression, row.timezone, loc=("window",))
        return cls(
            id=row.id,
            name=row.name,
            start_at=row.start_at,
            end_at=row.end_at,
            recurrence=recurrence,
            duration=timedelta(minutes=row.duration_minutes) if row.duration_minutes else None,
            template_ids=_ids(row.template_ids),
            schedule_ids=_ids(row.schedule_ids),
            job_types=frozenset(row.job_types) if row.job_types is not None else None,
            inventory_id=row.inventory_id,
        )

    def is_open(self, at: datetime) -> bool:
        if self.recurrence is not None and self.duration is not None:
            opened = next_fire(self.recurrence, at - self.duration)
            return opened is not None and opened <= at
        return (
            self.start_at is not None
            and self.end_at is not None
            and (self.start_at <= at < self.end_at)
        )

    def scopes(self, *, template_id: int | None, schedule_id: int | None, job_type: str) -> bool:
        """Whether runs of this template, schedule and job type are in the window's scope."""
        return (
            (self.template_ids is None or template_id in self.template_ids)
            and (self.schedule_ids is None or schedule_id in self.schedule_ids)
            and (self.job_types is None or job_type in self.job_types)
        )


def recurrence_spec(
    cron_expression: str, timezone: str, *, loc: tuple[str, ...] = ("body",)
) -> ScheduleSpec:
    """The opening times of a recurring window, validated like a custom schedule's."""
    return validated_spec(
        {"schedule_type": "custom", "cron_expression": cron_expression, "timezone": timezone},
        loc=loc,
    )


def _ids(values: list[object] | None) -> frozenset[int] | None:
    return None if values is None else frozenset(int(str(value)) for value in values)


def covering(
    windows: Sequence[Window],
    at: datetime,
    *,
    template_id: int | None,
    schedule_id: int | None,
    job_type: str,
) -> list[Window]:
    """The windows (not inventory-scoped) that hold a whole run of this kind at ``at``."""
    return [
        window
        for window in windows
        if window.inventory_id is None
        and window.scopes(template_id=template_id, schedule_id=schedule_id, job_type=job_type)
        and window.is_open(at)
    ]


def maintenance_override(
    windows: Sequence[Window],
    *,
    override: bool,
    template_id: int | None,
    schedule_id: int | None,
    job_type: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """What the audit row of a manual run records of the windows it went through ({} outside
    any); a 409 naming the windows when they hold the run and ``override`` is not given."""
    holding = covering(
        windows,
        at or datetime.now(UTC),
        template_id=template_id,
        schedule_id=schedule_id,
        job_type=job_type,
    )
    if not holding:
        return {}
    if not override:
        raise Conflict(
            f'inside {skipped_reason(holding)}; send "override_maintenance": true to run anyway',
            details={
                "windows": [{"id": window.id, "name": window.name} for window in holding],
                "loc": ["body", "override_maintenance"],
            },
        )
    return {
        "override_maintenance": True,
        "maintenance_windows": [window.name for window in holding],
    }


def maintenance_gate(windows: Sequence[Window], *, override: bool) -> ManualRunGate:
    """The check every manual run of a template or schedule passes before it is queued."""

    def check(request: RunRequest) -> dict[str, Any]:
        return maintenance_override(
            windows,
            override=override,
            template_id=request.template_id,
            schedule_id=request.schedule_id,
            job_type=request.job_type,
        )

    return check


def skipped_reason(windows: Sequence[Window]) -> str:
    """What a skipped fire, run or device records: ``maintenance window "<name>"``."""
    return ", ".join(f'maintenance window "{window.name}"' for window in windows)


async def load_windows(sessions: SessionFactory) -> list[Window]:
    async with sessions() as session:
        rows = await session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id))
        return [Window.of(row) for row in rows]


class WindowCache:
    """The windows, read at most every ``CACHE_SECONDS`` (one per API process)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._windows: list[Window] = []
        self._read_at = float("-inf")

    async def current(self) -> list[Window]:
        now = time.monotonic()
        if now - self._read_at > CACHE_SECONDS:
            self._windows = await load_windows(self._sessions)
            self._read_at = now
        return self._windows

    def forget(self) -> None:
        """A window changed in this process: read them again on the next request."""
        self._read_at = float("-inf")

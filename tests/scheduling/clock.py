"""Moments for schedule tests: UTC instants and zone-local wall-clock readings."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant given in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(moment: datetime, zone: ZoneInfo) -> str:
    """How a clock in `zone` reads at `moment`, with its offset: '2026-03-29 03:00+02:00'."""
    return moment.astimezone(zone).isoformat(sep=" ", timespec="minutes")

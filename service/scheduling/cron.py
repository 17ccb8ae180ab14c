"""Five-field crontab expressions: which times of day and which dates match.

Parsing and date matching are cronsim's (Debian cron's grammar: lists, ranges, steps,
month and weekday names, ``L``, ``LW`` and ``WEEKDAY#N``; day-of-month and day-of-week
are OR-ed when both are restricted). Only the *what matches* half of cron is taken from
it: *when that is* in a time zone (DST gaps and repeated hours) is decided by
`service.scheduling.wall_clock`, whose policy differs from Debian cron's.

On top of cronsim: the macros ``@hourly``, ``@daily``/``@midnight``, ``@weekly``,
``@monthly`` and ``@yearly``/``@annually``; exactly five fields (no seconds field); and
error messages that name the field and its text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime

from cronsim import CronSim, CronSimError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT")
# Any instant: cronsim parses on construction; the iteration it also offers is not used.
_PARSE_AT = datetime(2000, 1, 1)


@dataclass(frozen=True)
class CronExpression:
    """A parsed crontab line; weekdays use Python's numbering (0 = Monday … 6 = Sunday)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # plain weekdays only; ``L`` and ``#`` live in the matcher
    _matcher: CronSim = field(compare=False, repr=False)

    @functools.cached_property
    def minutes_of_day(self) -> tuple[int, ...]:
        """Sorted local times of day it fires at, as minutes after midnight."""
        return tuple(sorted(hour * 60 + minute for hour in self.hours for minute in self.minutes))

    @property
    def every_hour(self) -> bool:
        """True when it fires in every hour of the day (hour field covers 0–23)."""
        return len(self.hours) == 24

    def matches_date(self, day: date) -> bool:
        """Whether the expression fires at all on this (local) calendar date."""
        return day.month in self.months and bool(self._matcher.match_day(day))


@functools.lru_cache(maxsize=512)
def parse_cron(expression: str) -> CronExpression:
    """Parse a five-field crontab expression; raise ValueError saying what is wrong."""
    text = expression.strip()
    text = _MACROS.get(text.lower(), text)
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(
            "must have 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}: {expression!r}"
        )
    try:
        matcher = CronSim(" ".join(parts), _PARSE_AT)
    except CronSimError as exc:
        raise ValueError(_describe(str(exc), parts, expression)) from None
    return CronExpression(
        minutes=frozenset(matcher.minutes),
        hours=frozenset(matcher.hours),
        months=frozenset(matcher.months),
        # cron counts from Sunday = 0 (and 7); Python from Monday = 0.
        weekdays=frozenset((day + 6) % 7 for day in matcher.weekdays if isinstance(day, int)),
        _matcher=matcher,
    )


def _describe(error: str, parts: list[str], expression: str) -> str:
    """cronsim says "Bad <field>"; name the field's text and what it accepts."""
    for index, name in enumerate(_FIELDS):
        if error.lower().endswith(name):
            if name == "day-of-month" and _is_simple_day_list(parts[2]):
                return f"day-of-month and month never match a real date: {expression!r}"
            return (
                f"{name} field {parts[index]!r} is not valid "
                f"(numbers {_RANGES[index]}, lists, ranges and /steps)"
            )
    return f"{error}: {expression!r}"


def _is_simple_day_list(text: str) -> bool:
    """A plain list of day numbers that each parse: then only the months can be at fault."""
    items = text.split(",")
    return all(item.isascii() and item.isdigit() and 1 <= int(item) <= 31 for item in items)

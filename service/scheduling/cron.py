"""Five-field crontab expressions: parsing and date matching.

Only the *what matches* half of cron lives here; *when that is* in a time zone (DST gaps and
repeated hours) is decided by `service.scheduling.specs`, which is why this is not croniter: its
iteration across DST transitions is the fragile part, and the parsing is small.

Grammar (Vixie cron): ``minute hour day-of-month month day-of-week``; each field is a comma
list of ``*``, ``N``, ``N-M``, with an optional ``/STEP`` (``*/15``, ``1-5/2``, ``10/20`` =
from 10 to the field's end); months take ``JAN``–``DEC``, weekdays ``SUN``–``SAT`` (0 and 7
are Sunday), case-insensitive, also inside ranges (``MON-FRI``). The macros ``@hourly``,
``@daily``/``@midnight``, ``@weekly``, ``@monthly`` and ``@yearly``/``@annually`` expand to
their standard meaning.

Day matching follows cron's rule: when both day-of-month and day-of-week are restricted
(neither field starts with ``*``), a date matches if *either* does; otherwise both must.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import date

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# Longest month each month can have (February in a leap year), to reject dates that never occur.
_MAX_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, _WEEKDAY_NAMES),
)


@dataclass(frozen=True)
class CronExpression:
    """A parsed crontab line; weekdays use Python's numbering (0 = Monday … 6 = Sunday)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_of_month_restricted: bool
    weekday_restricted: bool

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
        if day.month not in self.months:
            return False
        by_day = day.day in self.days_of_month
        by_weekday = day.weekday() in self.weekdays
        if self.day_of_month_restricted and self.weekday_restricted:
            return by_day or by_weekday
        return by_day and by_weekday


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
    minutes, hours, days, months, cron_weekdays = (
        _parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    day_restricted = not parts[2].startswith("*")
    weekday_restricted = not parts[4].startswith("*")
    possible = any(day <= _MAX_MONTH_DAYS[month - 1] for month in months for day in days)
    if day_restricted and not weekday_restricted and not possible:
        raise ValueError(f"day-of-month and month never match a real date: {expression!r}")
    return CronExpression(
        minutes=minutes,
        hours=hours,
        days_of_month=days,
        months=months,
        # cron counts from Sunday = 0 (and 7); Python from Monday = 0.
        weekdays=frozenset((weekday + 6) % 7 for weekday in cron_weekdays),
        day_of_month_restricted=day_restricted,
        weekday_restricted=weekday_restricted,
    )


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, field))
    return frozenset(values)


def _parse_item(item: str, field: _Field) -> range:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _is_number(step_text) or int(step_text) < 1:
            raise ValueError(f"{field.name}: step must be a positive number, got {item!r}")
        step = int(step_text)
    if span == "*":
        low, high = field.low, field.high
    else:
        first, dash, last = span.partition("-")
        low = _parse_value(first, field, item)
        # "N/STEP" runs from N to the end of the field, as in Vixie cron.
        high = _parse_value(last, field, item) if dash else (field.high if slash else low)
        if dash and field.name == "day-of-week" and high == 0:
            high = 7  # "FRI-SUN": Sunday closing a range is day 7
        if low > high:
            raise ValueError(f"{field.name}: range start exceeds its end in {item!r}")
    return range(low, high + 1, step)


def _parse_value(text: str, field: _Field, item: str) -> int:
    value = field.names.get(text.lower()) if field.names else None
    if value is None:
        if not _is_number(text):
            raise ValueError(f"{field.name}: {item!r} is not a number or name")
        value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()

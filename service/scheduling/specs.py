"""Schedule specifications and their fire times, as pure functions (no clock, no I/O).

A schedule fires at instants computed only from its spec and its previous *scheduled* fire,
never from "now", so fires do not drift with the scheduler's latency.

- ``now`` fires once, at creation.
- ``interval`` is measured in absolute time: every ``interval_minutes`` from an anchor
  (``start_at``, else the creation time), whatever the wall clock does; DST never
  stretches or shortens an interval.
- ``hourly``, ``daily``, ``weekly``, ``monthly`` and ``custom`` (cron) are wall-clock
  schedules evaluated in ``timezone`` (IANA, default UTC); ``monthly`` on days 29–31 fires on
  the last day of shorter months.

Across DST transitions (rules in `service.scheduling.wall_clock`) a daily 02:30 fires at
03:00 on the spring-forward day and once, at the first 02:30, on the fall-back day;
``hourly`` and cron schedules with hour ``*`` stay one elapsed hour (or step) apart.

All instants returned are timezone-aware UTC; ``end_at`` is inclusive.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain, dropwhile, islice, takewhile
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import Field, ValidationInfo

from service.scheduling.cron import parse_cron
from service.scheduling.wall_clock import WallClockRule, wall_clock_fires

ScheduleType = Literal["now", "interval", "hourly", "daily", "weekly", "monthly", "custom"]

# Longer periods are calendar schedules; the cap also keeps timedelta arithmetic in range.
MAX_INTERVAL_MINUTES = 366 * 24 * 60

_BOUNDS = ("start_at", "end_at")
_FIELDS_OF_TYPE: dict[str, frozenset[str]] = {
    "now": frozenset(),
    "interval": frozenset({"interval_minutes", *_BOUNDS}),
    "hourly": frozenset({"time_of_day", *_BOUNDS}),
    "daily": frozenset({"time_of_day", *_BOUNDS}),
    "weekly": frozenset({"time_of_day", "weekdays", *_BOUNDS}),
    "monthly": frozenset({"time_of_day", "day_of_month", *_BOUNDS}),
    "custom": frozenset({"cron_expression", *_BOUNDS}),
}
_TYPED_FIELDS = frozenset().union(*_FIELDS_OF_TYPE.values())
_REQUIRED_BY: dict[str, frozenset[str]] = {
    "interval_minutes": frozenset({"interval"}),
    "time_of_day": frozenset({"daily", "weekly", "monthly"}),
    "weekdays": frozenset({"weekly"}),
    "day_of_month": frozenset({"monthly"}),
    "cron_expression": frozenset({"custom"}),
}
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_OF_DAY_ERROR = "time_of_day must be a local time HH:MM (00:00-23:59)"


class ScheduleSpec(pydantic.BaseModel):
    """When a schedule fires. Fields that do not belong to ``schedule_type`` are dropped;
    a missing required field or a bad value raises a validation error located at that field.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    schedule_type: ScheduleType
    interval_minutes: Annotated[int | None, Field(strict=True, validate_default=True)] = None
    time_of_day: Annotated[time | None, Field(validate_default=True)] = None
    weekdays: Annotated[tuple[int, ...] | None, Field(validate_default=True)] = None
    day_of_month: Annotated[int | None, Field(strict=True, validate_default=True)] = None
    cron_expression: Annotated[str | None, Field(validate_default=True)] = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _drop_foreign_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schedule_type") in _FIELDS_OF_TYPE:
            kept = _FIELDS_OF_TYPE[data["schedule_type"]]
            return {
                key: value for key, value in data.items() if key in kept or key not in _TYPED_FIELDS
            }
        return data

    @pydantic.field_validator(*_REQUIRED_BY, mode="before")
    @classmethod
    def _require_for_type(cls, value: Any, info: ValidationInfo) -> Any:
        schedule_type = info.data.get("schedule_type")
        field = info.field_name or ""
        if value is None and schedule_type in _REQUIRED_BY.get(field, ()):
            raise ValueError(f"{field} is required for schedule_type {schedule_type!r}")
        return value

    @pydantic.field_validator("interval_minutes")
    @classmethod
    def _check_interval(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_INTERVAL_MINUTES:
            raise ValueError(f"interval_minutes must be between 1 and {MAX_INTERVAL_MINUTES}")
        return value

    @pydantic.field_validator("time_of_day", mode="before")
    @classmethod
    def _parse_time_of_day(cls, value: Any) -> Any:
        if isinstance(value, str):
            hours, colon, minutes = value.strip().partition(":")
            if not (colon and _is_digits(hours, 1, 2) and _is_digits(minutes, 2, 2)):
                raise ValueError(_TIME_OF_DAY_ERROR)
            if int(hours) > 23 or int(minutes) > 59:
                raise ValueError(_TIME_OF_DAY_ERROR)
            return time(int(hours), int(minutes))
        if isinstance(value, time) and (value.second or value.microsecond or value.tzinfo):
            raise ValueError(_TIME_OF_DAY_ERROR + "; whole minutes, zone given by timezone")
        if value is not None and not isinstance(value, time):
            raise ValueError(_TIME_OF_DAY_ERROR)
        return value

    @pydantic.field_serializer("time_of_day", when_used="json-unless-none")
    def _format_time_of_day(self, value: time) -> str:
        return value.strftime("%H:%M")

    @pydantic.field_validator("weekdays", mode="before")
    @classmethod
    def _parse_weekdays(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
            raise ValueError("weekdays must be a list of days (0=Monday … 6=Sunday, or mon … sun)")
        days = {_weekday_number(item) for item in value}
        if not days:
            raise ValueError("weekdays must name at least one day")
        return tuple(sorted(days))

    @pydantic.field_validator("day_of_month")
    @classmethod
    def _check_day_of_month(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 31:
            raise ValueError("day_of_month must be between 1 and 31")
        return value

    @pydantic.field_validator("cron_expression")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ValueError as exc:
                raise ValueError(f"cron_expression {exc}") from None
            return value.strip()
        return value

    @pydantic.field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"timezone {value!r} is not a known IANA time zone") from None
        return value

    @pydantic.field_validator("start_at", "end_at")
    @classmethod
    def _check_bound(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"{info.field_name} must include a UTC offset")
        start_at = info.data.get("start_at")
        if info.field_name == "end_at" and start_at is not None and value <= start_at:
            raise ValueError("end_at must be after start_at")
        return value.astimezone(UTC)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class DueFires:
    """Fires due at a scheduler tick: the oldest ``fires`` (at most the limit asked for), how
    many were due in total, and the first fire after the tick (None when the schedule ends).
    """

    fires: tuple[datetime, ...]
    total_due: int
    next_after: datetime | None

    @property
    def omitted(self) -> int:
        """Due fires left out of ``fires`` by the limit."""
        return self.total_due - len(self.fires)


def first_fire(spec: ScheduleSpec, created_at: datetime) -> datetime | None:
    """First fire of a schedule created at ``created_at``: at or after ``max(created_at,
    start_at)``; ``now`` fires at ``created_at``; None if nothing fires before ``end_at``."""
    created_at = _as_utc(created_at, "created_at")
    if spec.schedule_type == "now":
        return created_at
    start = max(created_at, spec.start_at) if spec.start_at else created_at
    return next(_fires_from(spec, start, inclusive=True, anchor=spec.start_at or created_at), None)


def next_fire(spec: ScheduleSpec, previous: datetime) -> datetime | None:
    """The fire strictly after ``previous`` (a scheduled fire time, not when it actually ran);
    None for ``now`` and once past ``end_at``."""
    previous = _as_utc(previous, "previous")
    return next(
        _fires_from(spec, previous, inclusive=False, anchor=spec.start_at or previous), None
    )


def due_fires(spec: ScheduleSpec, previous: datetime, now: datetime, limit: int) -> DueFires:
    """Fires due at ``now`` for a schedule whose next fire is ``previous``: every fire in
    ``[previous, now]`` (oldest first, at most ``limit`` listed, all counted) and the first
    fire after ``now`` — what misfire policies (skip, run once, run all up to a cap) need."""
    previous = _as_utc(previous, "previous")
    now = _as_utc(now, "now")
    if limit < 0:
        raise ValueError("limit must not be negative")
    if spec.end_at is not None and previous > spec.end_at:
        return DueFires((), 0, None)
    if previous > now:
        return DueFires((), 0, previous)
    anchor = spec.start_at or previous
    fires: list[datetime] = []
    total = 0
    for fire in chain((previous,), _fires_from(spec, previous, inclusive=False, anchor=anchor)):
        if fire > now:
            return DueFires(tuple(fires), total, fire)
        total += 1
        if len(fires) < limit:
            fires.append(fire)
        elif spec.schedule_type == "interval":
            # A long outage of a short interval is counted, not walked fire by fire.
            return _rest_of_interval(spec, tuple(fires), total, fire, now, anchor)
    return DueFires(tuple(fires), total, None)


def preview(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` fires of the schedule as if created at ``after``: ``first_fire``
    then successive ``next_fire``s."""
    first = first_fire(spec, after) if count > 0 else None
    if first is None:
        return []
    anchor = spec.start_at or first
    rest = _fires_from(spec, first, inclusive=False, anchor=anchor)
    return list(islice(chain((first,), rest), count))


def _rest_of_interval(
    spec: ScheduleSpec,
    fires: tuple[datetime, ...],
    counted: int,
    last_counted: datetime,
    now: datetime,
    anchor: datetime,
) -> DueFires:
    step = timedelta(minutes=_required(spec.interval_minutes))
    until = min(now, spec.end_at) if spec.end_at else now
    remaining = (until - anchor) // step - (last_counted - anchor) // step
    following = _fires_from(spec, now, inclusive=False, anchor=anchor)
    return DueFires(fires, counted + remaining, next(following, None))


def _fires_from(
    spec: ScheduleSpec, start: datetime, *, inclusive: bool, anchor: datetime
) -> Iterator[datetime]:
    """Fires in increasing order from ``start``, within the spec's start/end bounds."""
    if spec.schedule_type == "now":
        return iter(())
    if spec.start_at is not None and start < spec.start_at:
        start, inclusive = spec.start_at, True
    if spec.schedule_type == "interval":
        fires = _interval_fires(timedelta(minutes=_required(spec.interval_minutes)), anchor, start)
    else:
        fires = wall_clock_fires(_rule(spec), spec.zone, start)
    fires = dropwhile(lambda fire: fire < start or (fire == start and not inclusive), fires)
    end_at = spec.end_at
    return fires if end_at is None else takewhile(lambda fire: fire <= end_at, fires)


def _interval_fires(step: timedelta, anchor: datetime, start: datetime) -> Iterator[datetime]:
    """Grid points ``anchor + k * step`` from the one at or before ``start`` on."""
    k = max(0, (start - anchor) // step)
    while True:
        try:
            fire = anchor + k * step
        except OverflowError:  # past year 9999: the schedule has no more fires
            return
        yield fire
        k += 1


def _rule(spec: ScheduleSpec) -> WallClockRule:
    if spec.schedule_type == "custom":
        cron = parse_cron(_required(spec.cron_expression))
        return WallClockRule(cron.minutes_of_day, cron.matches_date, cron.every_hour)
    at = spec.time_of_day or time(0, 0)
    if spec.schedule_type == "hourly":
        return WallClockRule(tuple(h * 60 + at.minute for h in range(24)), _every_day, True)
    minute_of_day = (at.hour * 60 + at.minute,)
    if spec.schedule_type == "weekly":
        weekdays = frozenset(_required(spec.weekdays))
        return WallClockRule(minute_of_day, lambda day: day.weekday() in weekdays, False)
    if spec.schedule_type == "monthly":
        wanted = _required(spec.day_of_month)
        return WallClockRule(minute_of_day, lambda day: day.day == _clamped(day, wanted), False)
    return WallClockRule(minute_of_day, _every_day, False)


def _clamped(day: date, wanted: int) -> int:
    return min(wanted, calendar.monthrange(day.year, day.month)[1])


def _every_day(day: date) -> bool:
    return True


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


_T = TypeVar("_T")


def _required(value: _T | None) -> _T:
    if value is None:
        raise ValueError("schedule spec is missing a field its type requires")
    return value


def _is_digits(text: str, shortest: int, longest: int) -> bool:
    return text.isascii() and text.isdigit() and shortest <= len(text) <= longest


def _weekday_number(item: Any) -> int:
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 6:
        return item
    if isinstance(item, str):
        name = item.strip().lower()
        for number, full_name in enumerate(_WEEKDAY_NAMES):
            if name in (full_name, full_name[:3]):
                return number
    raise ValueError(f"weekdays: {item!r} is not a day (0=Monday … 6=Sunday, or mon … sun)")

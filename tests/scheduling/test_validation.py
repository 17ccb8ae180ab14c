"""ScheduleSpec validation: every rejected value is reported at the field it concerns."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pydantic
import pytest

from service.scheduling.specs import (
    MAX_INTERVAL_MINUTES,
    ScheduleSpec,
    due_fires,
    first_fire,
    next_fire,
)

from .clock import utc

START = "2026-05-01T00:00:00+00:00"

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown type", {"schedule_type": "yearly"}, "schedule_type"),
    ("interval without minutes", {"schedule_type": "interval"}, "interval_minutes"),
    ("interval of zero", {"schedule_type": "interval", "interval_minutes": 0}, "interval_minutes"),
    (
        "negative interval",
        {"schedule_type": "interval", "interval_minutes": -5},
        "interval_minutes",
    ),
    (
        "interval above a year",
        {"schedule_type": "interval", "interval_minutes": MAX_INTERVAL_MINUTES + 1},
        "interval_minutes",
    ),
    (
        "interval as bool",
        {"schedule_type": "interval", "interval_minutes": True},
        "interval_minutes",
    ),
    ("daily without time", {"schedule_type": "daily"}, "time_of_day"),
    ("weekly without time", {"schedule_type": "weekly", "weekdays": [0]}, "time_of_day"),
    ("monthly without time", {"schedule_type": "monthly", "day_of_month": 1}, "time_of_day"),
    ("hour 24", {"schedule_type": "daily", "time_of_day": "24:00"}, "time_of_day"),
    ("minute 60", {"schedule_type": "daily", "time_of_day": "10:60"}, "time_of_day"),
    ("no colon", {"schedule_type": "daily", "time_of_day": "1000"}, "time_of_day"),
    ("with seconds", {"schedule_type": "daily", "time_of_day": "10:00:30"}, "time_of_day"),
    ("one-digit minute", {"schedule_type": "daily", "time_of_day": "10:5"}, "time_of_day"),
    ("letters", {"schedule_type": "daily", "time_of_day": "ab:cd"}, "time_of_day"),
    (
        "time object with seconds",
        {"schedule_type": "daily", "time_of_day": time(10, 0, 30)},
        "time_of_day",
    ),
    (
        "time object with zone",
        {"schedule_type": "daily", "time_of_day": time(10, 0, tzinfo=UTC)},
        "time_of_day",
    ),
    ("time as number", {"schedule_type": "daily", "time_of_day": 1000}, "time_of_day"),
    ("hourly with bad minute", {"schedule_type": "hourly", "time_of_day": "00:75"}, "time_of_day"),
    ("weekly without weekdays", {"schedule_type": "weekly", "time_of_day": "09:00"}, "weekdays"),
    (
        "weekly with no day",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": []},
        "weekdays",
    ),
    (
        "weekday 7",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": [7]},
        "weekdays",
    ),
    (
        "unknown weekday name",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": ["funday"]},
        "weekdays",
    ),
    (
        "weekday as bool",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": [True]},
        "weekdays",
    ),
    (
        "weekdays as one string",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": "mon"},
        "weekdays",
    ),
    ("monthly without day", {"schedule_type": "monthly", "time_of_day": "09:00"}, "day_of_month"),
    (
        "day 0",
        {"schedule_type": "monthly", "time_of_day": "09:00", "day_of_month": 0},
        "day_of_month",
    ),
    (
        "day 32",
        {"schedule_type": "monthly", "time_of_day": "09:00", "day_of_month": 32},
        "day_of_month",
    ),
    ("custom without cron", {"schedule_type": "custom"}, "cron_expression"),
    (
        "cron of 3 fields",
        {"schedule_type": "custom", "cron_expression": "* * *"},
        "cron_expression",
    ),
    (
        "cron minute 61",
        {"schedule_type": "custom", "cron_expression": "61 * * * *"},
        "cron_expression",
    ),
    (
        "cron step 0",
        {"schedule_type": "custom", "cron_expression": "*/0 * * * *"},
        "cron_expression",
    ),
    ("cron never", {"schedule_type": "custom", "cron_expression": "0 0 31 2 *"}, "cron_expression"),
    (
        "cron bad weekday",
        {"schedule_type": "custom", "cron_expression": "0 0 * * FUNDAY"},
        "cron_expression",
    ),
    (
        "unknown zone",
        {"schedule_type": "daily", "time_of_day": "09:00", "timezone": "Mars/Olympus"},
        "timezone",
    ),
    ("empty zone", {"schedule_type": "hourly", "timezone": ""}, "timezone"),
    ("zone directory", {"schedule_type": "hourly", "timezone": "Europe"}, "timezone"),
    ("zone path", {"schedule_type": "hourly", "timezone": "../etc/passwd"}, "timezone"),
    ("zone of wrong case", {"schedule_type": "hourly", "timezone": "utc"}, "timezone"),
    ("naive start", {"schedule_type": "hourly", "start_at": "2026-05-01T00:00:00"}, "start_at"),
    ("naive end", {"schedule_type": "hourly", "end_at": "2026-05-01T00:00:00"}, "end_at"),
    (
        "end before start",
        {"schedule_type": "hourly", "start_at": START, "end_at": "2026-04-30T23:59:00+00:00"},
        "end_at",
    ),
    (
        "end equal to start",
        {"schedule_type": "hourly", "start_at": START, "end_at": START},
        "end_at",
    ),
    ("unknown field", {"schedule_type": "hourly", "every": 5}, "every"),
]


@pytest.mark.parametrize(
    ("data", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_spec_is_reported_at_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ScheduleSpec.model_validate(data)
    errors = caught.value.errors()
    assert [error["loc"] for error in errors] == [(field,)]
    if errors[0]["type"] == "value_error":
        assert field in errors[0]["msg"]


def test_each_invalid_field_is_reported_on_its_own() -> None:
    data = {"schedule_type": "weekly", "time_of_day": "25:00", "timezone": "Nowhere/Else"}
    with pytest.raises(pydantic.ValidationError) as caught:
        ScheduleSpec.model_validate(data)
    assert {error["loc"] for error in caught.value.errors()} == {
        ("time_of_day",),
        ("weekdays",),
        ("timezone",),
    }


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        ([4, 0, 2], (0, 2, 4)),
        (["Mon", "wed", "FRIDAY"], (0, 2, 4)),
        (("sun", 6, "sunday"), (6,)),
        ({1, "tue"}, (1,)),
    ],
)
def test_weekdays_accept_numbers_and_names(weekdays: Any, expected: tuple[int, ...]) -> None:
    spec = ScheduleSpec(schedule_type="weekly", time_of_day="09:00", weekdays=weekdays)
    assert spec.weekdays == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("09:05", time(9, 5)), ("9:05", time(9, 5)), ("00:00", time(0, 0)), ("23:59", time(23, 59))],
)
def test_time_of_day_parses_hh_mm(given: str, expected: time) -> None:
    assert ScheduleSpec(schedule_type="daily", time_of_day=given).time_of_day == expected


def test_fields_of_other_types_are_dropped() -> None:
    spec = ScheduleSpec.model_validate(
        {
            "schedule_type": "daily",
            "time_of_day": "09:00",
            "interval_minutes": 0,
            "weekdays": ["nope"],
            "day_of_month": 99,
            "cron_expression": "garbage",
        }
    )
    assert (spec.interval_minutes, spec.weekdays, spec.day_of_month, spec.cron_expression) == (
        None,
        None,
        None,
        None,
    )


def test_now_keeps_no_bounds() -> None:
    spec = ScheduleSpec.model_validate(
        {"schedule_type": "now", "start_at": START, "end_at": "2020-01-01T00:00:00Z"}
    )
    assert (spec.start_at, spec.end_at) == (None, None)


def test_bounds_are_normalised_to_utc() -> None:
    spec = ScheduleSpec(
        schedule_type="hourly",
        start_at=datetime(2026, 5, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    assert spec.start_at == utc(2026, 5, 1)
    assert spec.start_at is not None
    assert spec.start_at.tzinfo is UTC


def test_spec_is_frozen_and_hashable() -> None:
    spec = ScheduleSpec(schedule_type="weekly", time_of_day="09:00", weekdays=["mon"])
    with pytest.raises(pydantic.ValidationError):
        spec.timezone = "Europe/Berlin"  # type: ignore[misc]
    same = ScheduleSpec(schedule_type="weekly", time_of_day="09:00", weekdays=[0])
    assert spec == same
    assert hash(spec) == hash(same)


def test_spec_round_trips_through_json() -> None:
    spec = ScheduleSpec(
        schedule_type="monthly",
        time_of_day="09:30",
        day_of_month=31,
        timezone="Europe/Berlin",
        start_at=utc(2026, 1, 1),
    )
    assert spec.model_dump(mode="json")["time_of_day"] == "09:30"
    assert ScheduleSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    "call",
    [
        lambda spec, naive: first_fire(spec, naive),
        lambda spec, naive: next_fire(spec, naive),
        lambda spec, naive: due_fires(spec, naive, utc(2026, 1, 1), 1),
        lambda spec, naive: due_fires(spec, utc(2026, 1, 1), naive, 1),
    ],
    ids=["first_fire", "next_fire", "due_fires previous", "due_fires now"],
)
def test_naive_moments_are_refused(call: Any) -> None:
    spec = ScheduleSpec(schedule_type="hourly")
    with pytest.raises(ValueError, match="timezone-aware"):
        call(spec, datetime(2026, 1, 1))


def test_negative_limit_is_refused() -> None:
    spec = ScheduleSpec(schedule_type="hourly")
    with pytest.raises(ValueError, match="limit"):
        due_fires(spec, utc(2026, 1, 1), utc(2026, 1, 2), -1)

"""Fire times of every schedule type, bounds and anchoring, away from DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from croniter import croniter

from service.scheduling.specs import ScheduleSpec, first_fire, next_fire, preview

from .clock import BERLIN, utc, wall

# (id, spec, preview start, expected first fires in UTC)
PREVIEWS: list[tuple[str, dict[str, Any], datetime, list[datetime]]] = [
    ("now", {"schedule_type": "now"}, utc(2026, 5, 4, 10, 7), [utc(2026, 5, 4, 10, 7)]),
    (
        "interval from creation",
        {"schedule_type": "interval", "interval_minutes": 90},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 10, 7), utc(2026, 5, 4, 11, 37), utc(2026, 5, 4, 13, 7)],
    ),
    (
        "interval anchored at a past start_at",
        {"schedule_type": "interval", "interval_minutes": 45, "start_at": utc(2026, 5, 4, 8, 0)},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 10, 15), utc(2026, 5, 4, 11, 0), utc(2026, 5, 4, 11, 45)],
    ),
    (
        "interval waits for a future start_at",
        {"schedule_type": "interval", "interval_minutes": 30, "start_at": utc(2026, 5, 5, 6, 0)},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 5, 6, 0), utc(2026, 5, 5, 6, 30)],
    ),
    (
        "hourly at minute 0",
        {"schedule_type": "hourly"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 11), utc(2026, 5, 4, 12), utc(2026, 5, 4, 13)],
    ),
    (
        "hourly honours the minute of time_of_day",
        {"schedule_type": "hourly", "time_of_day": "17:45"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 10, 45), utc(2026, 5, 4, 11, 45)],
    ),
    (
        "hourly in a half-hour zone",
        {"schedule_type": "hourly", "timezone": "Asia/Kolkata"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 10, 30), utc(2026, 5, 4, 11, 30)],
    ),
    (
        "daily later today",
        {"schedule_type": "daily", "time_of_day": "18:00"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 18), utc(2026, 5, 5, 18), utc(2026, 5, 6, 18)],
    ),
    (
        "daily already passed today",
        {"schedule_type": "daily", "time_of_day": "09:00"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 5, 9), utc(2026, 5, 6, 9)],
    ),
    (
        "daily at the creation instant fires then",
        {"schedule_type": "daily", "time_of_day": "10:07"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 10, 7), utc(2026, 5, 5, 10, 7)],
    ),
    (
        "daily in Berlin summer",
        {"schedule_type": "daily", "time_of_day": "09:00", "timezone": "Europe/Berlin"},
        utc(2026, 7, 1),
        [utc(2026, 7, 1, 7), utc(2026, 7, 2, 7)],
    ),
    (
        "daily in Berlin winter",
        {"schedule_type": "daily", "time_of_day": "09:00", "timezone": "Europe/Berlin"},
        utc(2026, 1, 15),
        [utc(2026, 1, 15, 8), utc(2026, 1, 16, 8)],
    ),
    (
        "daily at local midnight is the previous UTC day",
        {"schedule_type": "daily", "time_of_day": "00:00", "timezone": "Asia/Tokyo"},
        utc(2026, 5, 4, 10, 7),
        [utc(2026, 5, 4, 15), utc(2026, 5, 5, 15)],
    ),
    (
        "weekly on several weekdays (2026-03-01 is a Sunday)",
        {"schedule_type": "weekly", "time_of_day": "09:00", "weekdays": ["mon", "wed", "fri"]},
        utc(2026, 3, 1),
        [
            utc(2026, 3, 2, 9),
            utc(2026, 3, 4, 9),
            utc(2026, 3, 6, 9),
            utc(2026, 3, 9, 9),
            utc(2026, 3, 11, 9),
        ],
    ),
    (
        "weekly on one weekday",
        {"schedule_type": "weekly", "time_of_day": "23:30", "weekdays": [6]},
        utc(2026, 3, 1, 23, 31),
        [utc(2026, 3, 8, 23, 30), utc(2026, 3, 15, 23, 30)],
    ),
    (
        "weekly weekday is the local one",
        {
            "schedule_type": "weekly",
            "time_of_day": "06:00",
            "weekdays": ["mon"],
            "timezone": "Pacific/Auckland",
        },
        utc(2026, 3, 1),
        [utc(2026, 3, 1, 17), utc(2026, 3, 8, 17)],
    ),
    (
        "monthly on the 15th",
        {"schedule_type": "monthly", "time_of_day": "12:00", "day_of_month": 15},
        utc(2026, 5, 15, 12, 1),
        [utc(2026, 6, 15, 12), utc(2026, 7, 15, 12)],
    ),
    (
        "monthly on the 31st in a common year",
        {"schedule_type": "monthly", "time_of_day": "08:00", "day_of_month": 31},
        utc(2027, 1, 1),
        [
            utc(2027, 1, 31, 8),
            utc(2027, 2, 28, 8),
            utc(2027, 3, 31, 8),
            utc(2027, 4, 30, 8),
            utc(2027, 5, 31, 8),
        ],
    ),
    (
        "monthly on the 31st in a leap year",
        {"schedule_type": "monthly", "time_of_day": "08:00", "day_of_month": 31},
        utc(2028, 1, 1),
        [utc(2028, 1, 31, 8), utc(2028, 2, 29, 8), utc(2028, 3, 31, 8)],
    ),
    (
        "monthly on the 29th across February",
        {"schedule_type": "monthly", "time_of_day": "08:00", "day_of_month": 29},
        utc(2027, 1, 30),
        [utc(2027, 2, 28, 8), utc(2027, 3, 29, 8)],
    ),
    (
        "monthly on the 30th in December and February",
        {"schedule_type": "monthly", "time_of_day": "00:00", "day_of_month": 30},
        utc(2027, 12, 1),
        [utc(2027, 12, 30), utc(2028, 1, 30), utc(2028, 2, 29), utc(2028, 3, 30)],
    ),
    (
        "custom with step, range and weekday names",
        {"schedule_type": "custom", "cron_expression": "*/15 9-10 * * MON-FRI"},
        utc(2026, 3, 6, 10, 40),
        [utc(2026, 3, 6, 10, 45), utc(2026, 3, 9, 9), utc(2026, 3, 9, 9, 15)],
    ),
    (
        "custom day-of-month or day-of-week",
        {"schedule_type": "custom", "cron_expression": "0 12 13 * FRI"},
        utc(2026, 4, 1),
        [utc(2026, 4, 3, 12), utc(2026, 4, 10, 12), utc(2026, 4, 13, 12), utc(2026, 4, 17, 12)],
    ),
    (
        "custom leap day",
        {"schedule_type": "custom", "cron_expression": "0 6 29 2 *"},
        utc(2026, 5, 4),
        [utc(2028, 2, 29, 6), utc(2032, 2, 29, 6)],
    ),
    (
        "custom macro",
        {"schedule_type": "custom", "cron_expression": "@weekly"},
        utc(2026, 3, 3),
        [utc(2026, 3, 8), utc(2026, 3, 15)],
    ),
    (
        "custom weekdays in New York",
        {
            "schedule_type": "custom",
            "cron_expression": "30 8 * * 1-5",
            "timezone": "America/New_York",
        },
        utc(2026, 1, 9, 14),
        [utc(2026, 1, 12, 13, 30), utc(2026, 1, 13, 13, 30)],
    ),
]


@pytest.mark.parametrize(
    ("data", "after", "expected"),
    [case[1:] for case in PREVIEWS],
    ids=[case[0] for case in PREVIEWS],
)
def test_preview(data: dict[str, Any], after: datetime, expected: list[datetime]) -> None:
    spec = ScheduleSpec.model_validate(data)
    fires = preview(spec, after, len(expected))
    assert fires == expected
    assert all(fire.tzinfo is UTC for fire in fires)
    assert first_fire(spec, after) == expected[0]
    for earlier, later in pairwise(expected):
        assert next_fire(spec, earlier) == later


def test_now_fires_once() -> None:
    spec = ScheduleSpec(schedule_type="now")
    assert next_fire(spec, utc(2026, 5, 4)) is None
    assert preview(spec, utc(2026, 5, 4), 3) == [utc(2026, 5, 4)]


def test_interval_does_not_drift() -> None:
    spec = ScheduleSpec(schedule_type="interval", interval_minutes=7)
    anchor = datetime(2026, 1, 1, 0, 0, 13, 500_000, tzinfo=UTC)
    fire: datetime | None = anchor
    for _ in range(20_000):
        assert fire is not None
        fire = next_fire(spec, fire)
    assert fire == anchor + timedelta(minutes=7 * 20_000)


def test_interval_snaps_back_to_its_start_at_grid() -> None:
    spec = ScheduleSpec(schedule_type="interval", interval_minutes=60, start_at=utc(2026, 1, 1))
    assert next_fire(spec, utc(2026, 3, 3, 5, 20)) == utc(2026, 3, 3, 6)


def test_interval_ignores_the_zone_across_dst() -> None:
    spec = ScheduleSpec(schedule_type="interval", interval_minutes=60, timezone="Europe/Berlin")
    fires = preview(spec, utc(2026, 3, 28, 22), 6)
    assert [b - a for a, b in pairwise(fires)] == [timedelta(hours=1)] * 5
    assert [wall(fire, BERLIN)[11:16] for fire in fires] == [
        "23:00",
        "00:00",
        "01:00",
        "03:00",
        "04:00",
        "05:00",
    ]


def test_preview_of_nothing_is_empty() -> None:
    assert preview(ScheduleSpec(schedule_type="hourly"), utc(2026, 1, 1), 0) == []


BOUNDED: list[tuple[str, dict[str, Any], datetime, list[datetime]]] = [
    (
        "start_at delays the first fire",
        {
            "schedule_type": "daily",
            "time_of_day": "09:00",
            "start_at": utc(2026, 6, 10, 9, 30),
            "end_at": utc(2026, 6, 12, 9),
        },
        utc(2026, 6, 1),
        [utc(2026, 6, 11, 9), utc(2026, 6, 12, 9)],
    ),
    (
        "start_at on a fire is inclusive",
        {
            "schedule_type": "daily",
            "time_of_day": "09:00",
            "start_at": utc(2026, 6, 10, 9),
            "end_at": utc(2026, 6, 11, 12),
        },
        utc(2026, 6, 1),
        [utc(2026, 6, 10, 9), utc(2026, 6, 11, 9)],
    ),
    (
        "end_at is inclusive and stops the schedule",
        {"schedule_type": "daily", "time_of_day": "09:00", "end_at": utc(2026, 6, 3, 9)},
        utc(2026, 6, 1),
        [utc(2026, 6, 1, 9), utc(2026, 6, 2, 9), utc(2026, 6, 3, 9)],
    ),
    (
        "end_at bounds an interval",
        {
            "schedule_type": "interval",
            "interval_minutes": 20,
            "start_at": utc(2026, 6, 1, 10),
            "end_at": utc(2026, 6, 1, 10, 59),
        },
        utc(2026, 6, 1),
        [utc(2026, 6, 1, 10), utc(2026, 6, 1, 10, 20), utc(2026, 6, 1, 10, 40)],
    ),
    (
        "window of a cron schedule",
        {
            "schedule_type": "custom",
            "cron_expression": "0 */6 * * *",
            "start_at": utc(2026, 6, 1, 5),
            "end_at": utc(2026, 6, 2, 0),
        },
        utc(2026, 5, 1),
        [utc(2026, 6, 1, 6), utc(2026, 6, 1, 12), utc(2026, 6, 1, 18), utc(2026, 6, 2, 0)],
    ),
]


@pytest.mark.parametrize(
    ("data", "after", "expected"), [case[1:] for case in BOUNDED], ids=[case[0] for case in BOUNDED]
)
def test_bounds(data: dict[str, Any], after: datetime, expected: list[datetime]) -> None:
    spec = ScheduleSpec.model_validate(data)
    assert preview(spec, after, 10) == expected
    assert next_fire(spec, expected[-1]) is None
    assert next_fire(spec, after) == expected[0]


def test_schedule_created_after_its_end_never_fires() -> None:
    spec = ScheduleSpec(schedule_type="hourly", end_at=utc(2026, 1, 1))
    assert first_fire(spec, utc(2026, 1, 2)) is None
    assert preview(spec, utc(2026, 1, 2), 5) == []


def test_next_fire_is_strictly_after_previous() -> None:
    spec = ScheduleSpec(schedule_type="custom", cron_expression="* * * * *")
    assert next_fire(spec, utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 10, 1)
    assert next_fire(spec, datetime(2026, 1, 1, 10, 0, 59, tzinfo=UTC)) == utc(2026, 1, 1, 10, 1)


def test_next_fire_accepts_any_offset() -> None:
    spec = ScheduleSpec(schedule_type="daily", time_of_day="09:00", timezone="Europe/Berlin")
    previous = datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN)
    assert next_fire(spec, previous) == utc(2026, 6, 2, 7)


@pytest.mark.parametrize(
    "data",
    [
        {"schedule_type": "interval", "interval_minutes": 5},
        {"schedule_type": "custom", "cron_expression": "0 0 1 1 *"},
        {"schedule_type": "daily", "time_of_day": "12:00", "timezone": "Pacific/Kiritimati"},
    ],
    ids=["interval", "cron", "daily east of UTC"],
)
def test_calendar_end_ends_the_schedule(data: dict[str, Any]) -> None:
    spec = ScheduleSpec.model_validate(data)
    assert next_fire(spec, datetime(9999, 12, 31, 23, 58, tzinfo=UTC)) is None


def test_rare_dates_are_found_across_a_skipped_leap_year() -> None:
    spec = ScheduleSpec(schedule_type="custom", cron_expression="0 0 29 2 *")
    assert next_fire(spec, utc(2097, 1, 1)) == utc(2104, 2, 29)


@pytest.mark.parametrize(
    "expression",
    [
        "*/15 9-17 * * MON-FRI",
        "0 12 13 * FRI",
        "5 4 * * sun",
        "0 0 1 */3 *",
        "30 2 29 2 *",
        "10/20 */5 * * 1-5",
        "59 23 31 * *",
        "0 6 1,15 * 1",
        "0 0 * * 5-7",
        "@weekly",
    ],
)
def test_cron_in_utc_agrees_with_croniter(expression: str) -> None:
    # Without DST the fire times are plain calendar arithmetic, where croniter is a sound
    # reference; it starts strictly after its base, hence the second before.
    spec = ScheduleSpec(schedule_type="custom", cron_expression=expression)
    start = utc(2026, 1, 1)
    reference = croniter(expression, start - timedelta(seconds=1))
    assert preview(spec, start, 60) == [reference.get_next(datetime) for _ in range(60)]

"""Wall-clock schedules across DST transitions.

2026 transitions: Europe/Berlin 29 March 02:00 → 03:00 and 25 October 03:00 → 02:00;
America/New_York 8 March 02:00 → 03:00 and 1 November 02:00 → 01:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.scheduling.specs import ScheduleSpec, first_fire, next_fire, preview

from .clock import BERLIN, NEW_YORK, utc, wall

# (id, spec, preview start, expected fires as read on the schedule's local clock)
CASES: list[tuple[str, dict[str, Any], datetime, list[str]]] = [
    (
        "Berlin daily in the spring gap fires at 03:00",
        {"schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin"},
        utc(2026, 3, 27, 12),
        ["2026-03-28 02:30+01:00", "2026-03-29 03:00+02:00", "2026-03-30 02:30+02:00"],
    ),
    (
        "Berlin daily at the gap's first minute",
        {"schedule_type": "daily", "time_of_day": "02:00", "timezone": "Europe/Berlin"},
        utc(2026, 3, 28, 12),
        ["2026-03-29 03:00+02:00", "2026-03-30 02:00+02:00"],
    ),
    (
        "Berlin daily just before and after the gap",
        {"schedule_type": "custom", "cron_expression": "59 1 * * *", "timezone": "Europe/Berlin"},
        utc(2026, 3, 28, 12),
        ["2026-03-29 01:59+01:00", "2026-03-30 01:59+02:00"],
    ),
    (
        "Berlin daily in the repeated hour fires once",
        {"schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin"},
        utc(2026, 10, 23, 12),
        ["2026-10-24 02:30+02:00", "2026-10-25 02:30+02:00", "2026-10-26 02:30+01:00"],
    ),
    (
        "New York daily in the spring gap fires at 03:00",
        {"schedule_type": "daily", "time_of_day": "02:30", "timezone": "America/New_York"},
        utc(2026, 3, 6, 12),
        ["2026-03-07 02:30-05:00", "2026-03-08 03:00-04:00", "2026-03-09 02:30-04:00"],
    ),
    (
        "New York daily in the repeated hour fires once",
        {"schedule_type": "daily", "time_of_day": "01:30", "timezone": "America/New_York"},
        utc(2026, 10, 30, 12),
        ["2026-10-31 01:30-04:00", "2026-11-01 01:30-04:00", "2026-11-02 01:30-05:00"],
    ),
    (
        "New York 02:00 is not repeated in autumn",
        {"schedule_type": "daily", "time_of_day": "02:00", "timezone": "America/New_York"},
        utc(2026, 10, 31, 12),
        ["2026-11-01 02:00-05:00", "2026-11-02 02:00-05:00"],
    ),
    (
        "Berlin hourly across spring keeps one hour apart",
        {"schedule_type": "hourly", "timezone": "Europe/Berlin"},
        utc(2026, 3, 28, 22),
        [
            "2026-03-28 23:00+01:00",
            "2026-03-29 00:00+01:00",
            "2026-03-29 01:00+01:00",
            "2026-03-29 03:00+02:00",
            "2026-03-29 04:00+02:00",
        ],
    ),
    (
        "Berlin hourly fires in both passes of the repeated hour",
        {"schedule_type": "hourly", "timezone": "Europe/Berlin"},
        utc(2026, 10, 24, 22),
        [
            "2026-10-25 00:00+02:00",
            "2026-10-25 01:00+02:00",
            "2026-10-25 02:00+02:00",
            "2026-10-25 02:00+01:00",
            "2026-10-25 03:00+01:00",
        ],
    ),
    (
        "New York hourly at :30 skips the gap",
        {"schedule_type": "hourly", "time_of_day": "00:30", "timezone": "America/New_York"},
        utc(2026, 3, 8, 4),
        [
            "2026-03-07 23:30-05:00",
            "2026-03-08 00:30-05:00",
            "2026-03-08 01:30-05:00",
            "2026-03-08 03:30-04:00",
            "2026-03-08 04:30-04:00",
        ],
    ),
    (
        "New York hourly at :30 through the repeated hour",
        {"schedule_type": "hourly", "time_of_day": "00:30", "timezone": "America/New_York"},
        utc(2026, 11, 1, 3),
        [
            "2026-10-31 23:30-04:00",
            "2026-11-01 00:30-04:00",
            "2026-11-01 01:30-04:00",
            "2026-11-01 01:30-05:00",
            "2026-11-01 02:30-05:00",
        ],
    ),
    (
        "Berlin weekly on the spring Sunday",
        {
            "schedule_type": "weekly",
            "time_of_day": "02:30",
            "weekdays": ["sun"],
            "timezone": "Europe/Berlin",
        },
        utc(2026, 3, 20),
        ["2026-03-22 02:30+01:00", "2026-03-29 03:00+02:00", "2026-04-05 02:30+02:00"],
    ),
    (
        "Berlin monthly on the autumn Sunday",
        {
            "schedule_type": "monthly",
            "time_of_day": "02:30",
            "day_of_month": 25,
            "timezone": "Europe/Berlin",
        },
        utc(2026, 9, 26),
        ["2026-10-25 02:30+02:00", "2026-11-25 02:30+01:00"],
    ),
    (
        "Berlin cron every 30 minutes across the gap",
        {"schedule_type": "custom", "cron_expression": "*/30 * * * *", "timezone": "Europe/Berlin"},
        utc(2026, 3, 29, 0),
        [
            "2026-03-29 01:00+01:00",
            "2026-03-29 01:30+01:00",
            "2026-03-29 03:00+02:00",
            "2026-03-29 03:30+02:00",
        ],
    ),
    (
        "Berlin cron every 30 minutes through the repeated hour",
        {"schedule_type": "custom", "cron_expression": "*/30 * * * *", "timezone": "Europe/Berlin"},
        utc(2026, 10, 25, 0),
        [
            "2026-10-25 02:00+02:00",
            "2026-10-25 02:30+02:00",
            "2026-10-25 02:00+01:00",
            "2026-10-25 02:30+01:00",
            "2026-10-25 03:00+01:00",
        ],
    ),
    (
        "Berlin cron pinned to 02:xx fires once in the gap",
        {"schedule_type": "custom", "cron_expression": "0,30 2 * * *", "timezone": "Europe/Berlin"},
        utc(2026, 3, 28, 12),
        ["2026-03-29 03:00+02:00", "2026-03-30 02:00+02:00", "2026-03-30 02:30+02:00"],
    ),
    (
        "Berlin cron pinned to 02:xx runs the repeated hour once",
        {"schedule_type": "custom", "cron_expression": "0,30 2 * * *", "timezone": "Europe/Berlin"},
        utc(2026, 10, 24, 12),
        ["2026-10-25 02:00+02:00", "2026-10-25 02:30+02:00", "2026-10-26 02:00+01:00"],
    ),
    (
        "New York cron on Sundays in the gap",
        {
            "schedule_type": "custom",
            "cron_expression": "30 2 * * SUN",
            "timezone": "America/New_York",
        },
        utc(2026, 3, 2),
        ["2026-03-08 03:00-04:00", "2026-03-15 02:30-04:00"],
    ),
    (
        "New York cron steps within the repeated hour",
        {
            "schedule_type": "custom",
            "cron_expression": "*/20 1 * * *",
            "timezone": "America/New_York",
        },
        utc(2026, 10, 31, 12),
        [
            "2026-11-01 01:00-04:00",
            "2026-11-01 01:20-04:00",
            "2026-11-01 01:40-04:00",
            "2026-11-02 01:00-05:00",
        ],
    ),
    (
        "half-hour shift: Lord Howe gap ends at 02:30",
        {"schedule_type": "daily", "time_of_day": "02:15", "timezone": "Australia/Lord_Howe"},
        utc(2026, 10, 2),
        ["2026-10-03 02:15+10:30", "2026-10-04 02:30+11:00", "2026-10-05 02:15+11:00"],
    ),
    (
        "transition at midnight: Santiago skips 00:00",
        {"schedule_type": "daily", "time_of_day": "00:00", "timezone": "America/Santiago"},
        utc(2026, 9, 4),
        ["2026-09-04 00:00-04:00", "2026-09-05 00:00-04:00", "2026-09-06 01:00-03:00"],
    ),
    (
        "transition at midnight: Santiago repeats 23:xx",
        {"schedule_type": "hourly", "time_of_day": "00:30", "timezone": "America/Santiago"},
        utc(2026, 4, 5, 1),
        [
            "2026-04-04 22:30-03:00",
            "2026-04-04 23:30-03:00",
            "2026-04-04 23:30-04:00",
            "2026-04-05 00:30-04:00",
        ],
    ),
    (
        "a skipped calendar day fires at the first instant after it (Samoa 2011)",
        {"schedule_type": "daily", "time_of_day": "09:00", "timezone": "Pacific/Apia"},
        utc(2011, 12, 28),
        [
            "2011-12-28 09:00-10:00",
            "2011-12-29 09:00-10:00",
            "2011-12-31 00:00+14:00",
            "2011-12-31 09:00+14:00",
        ],
    ),
]


@pytest.mark.parametrize(
    ("data", "after", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_fires_across_transitions(
    data: dict[str, Any], after: datetime, expected: list[str]
) -> None:
    spec = ScheduleSpec.model_validate(data)
    fires = preview(spec, after, len(expected))
    assert [wall(fire, spec.zone) for fire in fires] == expected
    for earlier, later in pairwise(fires):
        assert next_fire(spec, earlier) == later


def test_gap_fire_is_the_transition_instant() -> None:
    spec = ScheduleSpec(schedule_type="daily", time_of_day="02:30", timezone="Europe/Berlin")
    assert next_fire(spec, utc(2026, 3, 28, 1, 30)) == utc(2026, 3, 29, 1, 0)
    spec = ScheduleSpec(schedule_type="daily", time_of_day="02:30", timezone="America/New_York")
    assert next_fire(spec, utc(2026, 3, 7, 7, 30)) == utc(2026, 3, 8, 7, 0)


@pytest.mark.parametrize(
    ("zone", "local_time", "day"),
    [
        (BERLIN, "02:30", "2026-10-25"),
        (BERLIN, "02:00", "2026-10-25"),
        (BERLIN, "02:59", "2026-10-25"),
        (NEW_YORK, "01:30", "2026-11-01"),
        (NEW_YORK, "01:00", "2026-11-01"),
        (BERLIN, "02:30", "2026-03-29"),
        (NEW_YORK, "02:30", "2026-03-08"),
    ],
)
def test_daily_fires_exactly_once_on_transition_day(
    zone: ZoneInfo, local_time: str, day: str
) -> None:
    spec = ScheduleSpec(schedule_type="daily", time_of_day=local_time, timezone=str(zone))
    start = datetime.fromisoformat(day).replace(tzinfo=zone) - timedelta(days=2)
    fires = preview(spec, start, 5)
    assert [wall(fire, zone)[:10] for fire in fires].count(day) == 1
    assert [wall(fire, zone)[:10] for fire in fires] == sorted({wall(f, zone)[:10] for f in fires})


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        (BERLIN, utc(2026, 3, 27)),
        (BERLIN, utc(2026, 10, 23)),
        (NEW_YORK, utc(2026, 3, 6)),
        (NEW_YORK, utc(2026, 10, 30)),
        (ZoneInfo("Asia/Kolkata"), utc(2026, 3, 27)),
    ],
)
def test_hourly_is_one_hour_apart_through_a_transition(zone: ZoneInfo, start: datetime) -> None:
    spec = ScheduleSpec(schedule_type="hourly", time_of_day="00:15", timezone=str(zone))
    fires = preview(spec, start, 96)
    assert {later - earlier for earlier, later in pairwise(fires)} == {timedelta(hours=1)}


def test_first_fire_created_inside_the_repeated_hour() -> None:
    # Created during the second 02:xx: today's 02:45 already fired in the first pass.
    spec = ScheduleSpec(schedule_type="daily", time_of_day="02:45", timezone="Europe/Berlin")
    created = utc(2026, 10, 25, 1, 10)  # 02:10 CET, second pass
    assert wall(created, BERLIN) == "2026-10-25 02:10+01:00"
    fire = first_fire(spec, created)
    assert fire is not None
    assert wall(fire, BERLIN) == "2026-10-26 02:45+01:00"

"""due_fires: what a scheduler tick finds due after misfires, for each misfire policy's needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from service.scheduling.specs import DueFires, ScheduleSpec, due_fires, next_fire

from .clock import BERLIN, utc, wall

HOURLY = {"schedule_type": "hourly"}
EVERY_20 = {"schedule_type": "interval", "interval_minutes": 20}

# (id, spec, previous = stored next fire, now, limit, expected)
CASES: list[tuple[str, dict[str, Any], datetime, datetime, int, DueFires]] = [
    (
        "on time",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 10, 0),
        10,
        DueFires((utc(2026, 5, 4, 10),), 1, utc(2026, 5, 4, 11)),
    ),
    (
        "not yet due",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 9, 59),
        10,
        DueFires((), 0, utc(2026, 5, 4, 10)),
    ),
    (
        "three hours missed, all listed",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 13, 30),
        10,
        DueFires(
            (utc(2026, 5, 4, 10), utc(2026, 5, 4, 11), utc(2026, 5, 4, 12), utc(2026, 5, 4, 13)),
            4,
            utc(2026, 5, 4, 14),
        ),
    ),
    (
        "three hours missed, capped at two",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 13, 30),
        2,
        DueFires((utc(2026, 5, 4, 10), utc(2026, 5, 4, 11)), 4, utc(2026, 5, 4, 14)),
    ),
    (
        "skip policy asks for none",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 13, 30),
        0,
        DueFires((), 4, utc(2026, 5, 4, 14)),
    ),
    (
        "now exactly on a later fire counts it",
        HOURLY,
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 12),
        10,
        DueFires(
            (utc(2026, 5, 4, 10), utc(2026, 5, 4, 11), utc(2026, 5, 4, 12)), 3, utc(2026, 5, 4, 13)
        ),
    ),
    (
        "end_at inside the outage ends the schedule",
        {**HOURLY, "end_at": utc(2026, 5, 4, 11, 30)},
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 13, 30),
        10,
        DueFires((utc(2026, 5, 4, 10), utc(2026, 5, 4, 11)), 2, None),
    ),
    (
        "previous beyond end_at is not due",
        {**HOURLY, "end_at": utc(2026, 5, 4, 9)},
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 13),
        10,
        DueFires((), 0, None),
    ),
    (
        "now fires once",
        {"schedule_type": "now"},
        utc(2026, 5, 4, 10, 7),
        utc(2026, 5, 4, 10, 8),
        10,
        DueFires((utc(2026, 5, 4, 10, 7),), 1, None),
    ),
    (
        "interval missed",
        EVERY_20,
        utc(2026, 5, 4, 10, 5),
        utc(2026, 5, 4, 11, 10),
        2,
        DueFires((utc(2026, 5, 4, 10, 5), utc(2026, 5, 4, 10, 25)), 4, utc(2026, 5, 4, 11, 25)),
    ),
    (
        "interval missed for a year is counted, not walked",
        {"schedule_type": "interval", "interval_minutes": 1},
        utc(2026, 1, 1),
        utc(2027, 1, 1),
        3,
        DueFires(
            (utc(2026, 1, 1), utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)),
            365 * 24 * 60 + 1,
            utc(2027, 1, 1, 0, 1),
        ),
    ),
    (
        "interval on its start_at grid with end_at",
        {**EVERY_20, "start_at": utc(2026, 5, 4, 10), "end_at": utc(2026, 5, 4, 11, 30)},
        utc(2026, 5, 4, 10, 20),
        utc(2026, 5, 4, 12),
        1,
        DueFires((utc(2026, 5, 4, 10, 20),), 4, None),
    ),
    (
        "weekly outage over a fortnight",
        {"schedule_type": "weekly", "time_of_day": "06:00", "weekdays": ["mon", "thu"]},
        utc(2026, 3, 2, 6),
        utc(2026, 3, 16, 5),
        10,
        DueFires(
            (utc(2026, 3, 2, 6), utc(2026, 3, 5, 6), utc(2026, 3, 9, 6), utc(2026, 3, 12, 6)),
            4,
            utc(2026, 3, 16, 6),
        ),
    ),
]


@pytest.mark.parametrize(
    ("data", "previous", "now", "limit", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_due_fires(
    data: dict[str, Any], previous: datetime, now: datetime, limit: int, expected: DueFires
) -> None:
    due = due_fires(ScheduleSpec.model_validate(data), previous, now, limit)
    assert due == expected
    assert due.omitted == expected.total_due - len(expected.fires)


@pytest.mark.parametrize("limit", [0, 1, 5, 1000])
@pytest.mark.parametrize(
    "data",
    [
        {"schedule_type": "interval", "interval_minutes": 7, "start_at": utc(2026, 1, 1, 0, 3)},
        {"schedule_type": "interval", "interval_minutes": 7},
        {"schedule_type": "custom", "cron_expression": "*/10 * * * *", "timezone": "Europe/Berlin"},
        {"schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin"},
    ],
    ids=["interval on a grid", "interval from previous", "cron", "daily"],
)
def test_due_fires_agrees_with_walking_next_fire(data: dict[str, Any], limit: int) -> None:
    spec = ScheduleSpec.model_validate(data)
    previous, now = utc(2026, 3, 28, 0, 3), utc(2026, 3, 30, 4)
    walked = [previous]
    while (following := next_fire(spec, walked[-1])) is not None and following <= now:
        walked.append(following)
    due = due_fires(spec, previous, now, limit)
    assert due.fires == tuple(walked[:limit])
    assert due.total_due == len(walked)
    assert due.next_after == next_fire(spec, walked[-1])


def test_misfire_across_the_spring_gap_keeps_the_moved_fire() -> None:
    spec = ScheduleSpec(schedule_type="daily", time_of_day="02:30", timezone="Europe/Berlin")
    due = due_fires(spec, utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 12), 10)
    assert [wall(fire, BERLIN) for fire in due.fires] == [
        "2026-03-28 02:30+01:00",
        "2026-03-29 03:00+02:00",
        "2026-03-30 02:30+02:00",
    ]
    assert due.next_after is not None
    assert wall(due.next_after, BERLIN) == "2026-03-31 02:30+02:00"


def test_minute_cron_outage_of_a_month_stays_cheap() -> None:
    spec = ScheduleSpec(schedule_type="custom", cron_expression="* * * * *")
    due = due_fires(spec, utc(2026, 1, 1), utc(2026, 1, 31) - timedelta(minutes=1), 5)
    assert due.total_due == 30 * 24 * 60
    assert due.next_after == utc(2026, 1, 31)

"""What due fires become under each misfire policy, including outages longer than the record
limit (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.scheduling.claims import plan_fires
from service.scheduling.specs import ScheduleSpec

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
GRACE = timedelta(seconds=30)
MINUTELY = ScheduleSpec(schedule_type="interval", interval_minutes=1)
CRON_MINUTELY = ScheduleSpec(schedule_type="custom", cron_expression="* * * * *")
WEEK_AGO = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
FIRES_IN_A_WEEK = 7 * 24 * 60 + 1  # both ends included


@pytest.mark.parametrize("spec", [MINUTELY, CRON_MINUTELY], ids=["interval", "cron"])
@pytest.mark.parametrize(
    ("policy", "cap", "ran"),
    [("skip", 1, []), ("run_once", 1, [0]), ("run_all", 3, [2, 1, 0])],
)
def test_a_week_long_outage_is_bounded(
    spec: ScheduleSpec, policy: str, cap: int, ran: list[int]
) -> None:
    plan = plan_fires(
        spec,
        previous=WEEK_AGO,
        now=NOW,
        misfire_policy=policy,
        misfire_cap=cap,
        grace=GRACE,
        record_limit=5,
    )
    latest = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert plan.run == tuple(latest - timedelta(minutes=back) for back in ran)
    assert plan.missed == tuple(WEEK_AGO + timedelta(minutes=k) for k in range(5))
    assert plan.unrecorded == FIRES_IN_A_WEEK - 5 - len(ran)
    assert plan.next_after == latest + timedelta(minutes=1)


def test_skip_runs_a_fire_within_the_grace() -> None:
    on_time = NOW - timedelta(seconds=10)
    plan = plan_fires(
        MINUTELY,
        previous=on_time - timedelta(minutes=2),
        now=NOW,
        misfire_policy="skip",
        misfire_cap=1,
        grace=GRACE,
        record_limit=100,
    )
    assert plan.run == (on_time,)
    assert plan.missed == (on_time - timedelta(minutes=2), on_time - timedelta(minutes=1))
    assert plan.unrecorded == 0


def test_nothing_due_only_reports_the_next_fire() -> None:
    later = NOW + timedelta(minutes=3)
    plan = plan_fires(
        MINUTELY,
        previous=later,
        now=NOW,
        misfire_policy="run_once",
        misfire_cap=1,
        grace=GRACE,
        record_limit=100,
    )
    assert plan == type(plan)((), (), 0, later)

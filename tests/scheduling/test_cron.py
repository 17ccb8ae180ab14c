"""Crontab parsing and date matching (service/scheduling/cron.py)."""

from __future__ import annotations

from datetime import date

import pytest

from service.scheduling.cron import parse_cron

ALL_MINUTES = frozenset(range(60))
ALL_HOURS = frozenset(range(24))
WORKDAYS = frozenset(range(5))  # Python weekdays: Monday = 0


@pytest.mark.parametrize(
    ("expression", "minutes", "hours", "weekdays"),
    [
        ("* * * * *", ALL_MINUTES, ALL_HOURS, frozenset(range(7))),
        ("*/15 * * * *", frozenset({0, 15, 30, 45}), ALL_HOURS, frozenset(range(7))),
        ("10/20 * * * *", frozenset({10, 30, 50}), ALL_HOURS, frozenset(range(7))),
        ("1-10/3 * * * *", frozenset({1, 4, 7, 10}), ALL_HOURS, frozenset(range(7))),
        ("0,30 9-17 * * 1-5", frozenset({0, 30}), frozenset(range(9, 18)), WORKDAYS),
        ("0 9 * * MON-FRI", frozenset({0}), frozenset({9}), WORKDAYS),
        ("0 9 * * mon,Tue,WED,thu,fri", frozenset({0}), frozenset({9}), WORKDAYS),
        ("0 */6 * * 0", frozenset({0}), frozenset({0, 6, 12, 18}), frozenset({6})),
        ("0 0 * * 7", frozenset({0}), frozenset({0}), frozenset({6})),
        ("0 0 * * SUN", frozenset({0}), frozenset({0}), frozenset({6})),
        ("0 0 * * 5-7", frozenset({0}), frozenset({0}), frozenset({4, 5, 6})),
        ("0 0 * * */2", frozenset({0}), frozenset({0}), frozenset({6, 1, 3, 5})),
        ("  5   4  *  *  *  ", frozenset({5}), frozenset({4}), frozenset(range(7))),
    ],
)
def test_fields(
    expression: str, minutes: frozenset[int], hours: frozenset[int], weekdays: frozenset[int]
) -> None:
    cron = parse_cron(expression)
    assert (cron.minutes, cron.hours, cron.weekdays) == (minutes, hours, weekdays)


@pytest.mark.parametrize(
    ("expression", "months"),
    [
        ("0 0 1 JAN,jul *", frozenset({1, 7})),
        ("0 0 1 mar-may *", frozenset({3, 4, 5})),
        ("0 0 1 */3 *", frozenset({1, 4, 7, 10})),
    ],
)
def test_month_names_and_steps(expression: str, months: frozenset[int]) -> None:
    assert parse_cron(expression).months == months


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@MIDNIGHT", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros(macro: str, expanded: str) -> None:
    assert parse_cron(macro) == parse_cron(expanded)


def test_minutes_of_day_are_sorted_times() -> None:
    assert parse_cron("45,5 22,3 * * *").minutes_of_day == (185, 225, 1325, 1365)


@pytest.mark.parametrize(
    ("expression", "every_hour"),
    [("*/5 * * * *", True), ("0 0-23 * * *", True), ("0 */2 * * *", False), ("0 9 * * *", False)],
)
def test_every_hour(expression: str, every_hour: bool) -> None:
    assert parse_cron(expression).every_hour is every_hour


# 2026-04-13 is a Monday, 2026-04-17 a Friday, 2026-04-14 a Tuesday.
@pytest.mark.parametrize(
    ("expression", "day", "matches"),
    [
        ("0 0 13 * FRI", date(2026, 4, 13), True),  # both restricted: either one suffices
        ("0 0 13 * FRI", date(2026, 4, 17), True),
        ("0 0 13 * FRI", date(2026, 4, 14), False),
        ("0 0 13 * *", date(2026, 4, 13), True),
        ("0 0 13 * *", date(2026, 4, 17), False),
        ("0 0 * * FRI", date(2026, 4, 17), True),
        ("0 0 * * FRI", date(2026, 4, 13), False),
        ("0 0 */2 * FRI", date(2026, 4, 17), True),  # "*/2" counts as unrestricted: both needed
        ("0 0 */2 * FRI", date(2026, 4, 13), False),
        ("0 0 */2 * FRI", date(2026, 4, 3), True),
        ("0 0 1 JUN *", date(2026, 4, 1), False),
        ("0 0 29 2 *", date(2028, 2, 29), True),
    ],
)
def test_matches_date(expression: str, day: date, matches: bool) -> None:
    assert parse_cron(expression).matches_date(day) is matches


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "5 fields"),
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("@reboot", "5 fields"),
        ("60 * * * *", "minute field '60' is not valid"),
        ("* 24 * * *", "hour field '24' is not valid"),
        ("* * 0 * *", "day-of-month field '0' is not valid"),
        ("* * * 13 *", "month field '13' is not valid"),
        ("* * * * 8", "day-of-week field '8' is not valid"),
        ("*/0 * * * *", "minute field '\\*/0' is not valid"),
        ("*/x * * * *", "minute field '\\*/x' is not valid"),
        ("5-1 * * * *", "minute field '5-1' is not valid"),
        ("a * * * *", "minute field 'a' is not valid"),
        ("1,,2 * * * *", "minute field '1,,2' is not valid"),
        ("-5 * * * *", "minute field '-5' is not valid"),
        ("0 0 * * MON-", "day-of-week field 'MON-' is not valid"),
        ("0 0 * * FRI-SUN", "day-of-week field 'FRI-SUN' is not valid"),  # no wrap-around
        ("0 0 1 FOO *", "month field 'FOO' is not valid"),
        ("0 0 * JAN MONDAY", "day-of-week field 'MONDAY' is not valid"),
        ("0 0 ² * *", "day-of-month field '²' is not valid"),
        ("0 0 30 2 *", "never match a real date"),
        ("0 0 31 4,6,9,11 *", "never match a real date"),
    ],
)
def test_rejects(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cron(expression)


@pytest.mark.parametrize(
    ("expression", "day", "matches"),
    [
        ("0 0 L * *", date(2026, 2, 28), True),  # last day of the month
        ("0 0 L * *", date(2026, 2, 27), False),
        ("0 0 * * FRI#2", date(2026, 4, 10), True),  # second Friday
        ("0 0 * * FRI#2", date(2026, 4, 17), False),
        ("0 0 * * 5L", date(2026, 4, 24), True),  # last Friday
    ],
)
def test_last_and_nth_day_forms(expression: str, day: date, matches: bool) -> None:
    assert parse_cron(expression).matches_date(day) is matches


def test_impossible_day_is_fine_when_a_weekday_can_match() -> None:
    cron = parse_cron("0 0 30 2 MON")
    assert cron.matches_date(date(2026, 2, 2))  # a Monday
    assert not cron.matches_date(date(2026, 2, 3))

"""Recurring local wall-clock times in a time zone, as UTC instants, correct across DST.

A rule names local times of day (minutes after midnight) on the dates that match. Mapping
them to instants needs a decision where the local clock skips or repeats:

- Wall-clock rules (a schedule pinned to hours of the day: daily at 02:30, cron
  ``30 2 * * *``) fire once per local time per day. A time in the spring-forward gap fires at
  the first valid instant after it (02:30 → 03:00, several gap times collapse into that one
  fire); an ambiguous time in the repeated autumn hour fires at its first occurrence only.
- Elapsed-time rules (schedules firing in every hour: ``hourly``, cron hour ``*``) follow
  the clock as it is read: gap times never occur and do not fire, repeated times fire in
  both occurrences, so "hourly" stays one hour apart through both transitions. This is
  Vixie cron's rule for wildcard jobs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A matching date is at most 8 years away (29 February across a skipped leap year, 2096 →
# 2104); a search that finds none in longer than that has no answer.
_MAX_DAYS_WITHOUT_MATCH = 9 * 366


@dataclass(frozen=True)
class WallClockRule:
    """Local times of day on the dates that match, and which DST behaviour applies."""

    minutes_of_day: tuple[int, ...]  # local times it fires at, sorted, minutes after midnight
    matches_date: Callable[[date], bool]
    follows_elapsed_time: bool  # True: elapsed-time rules, see above


def wall_clock_fires(rule: WallClockRule, zone: ZoneInfo, start: datetime) -> Iterator[datetime]:
    """The rule's instants in increasing order, beginning at or before ``start`` (from the
    local day before it, as a DST shift can move a fire across midnight; callers drop the
    early ones). Ends only when no date matches within the search horizon."""
    try:
        local_start = start.astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # local time past year 9999: nothing is representable after it
        return
    day = max(local_start.date(), date.min + timedelta(days=1)) - timedelta(days=1)
    last: datetime | None = None
    days_without_match = 0
    while days_without_match < _MAX_DAYS_WITHOUT_MATCH and day < date.max - timedelta(days=2):
        if rule.matches_date(day):
            days_without_match = 0
            skip_to = (local_start - datetime.combine(day, time())) // timedelta(minutes=1)
            for fire in _fires_on(day, rule, zone, skip_to):
                if last is None or fire > last:
                    last = fire
                    yield fire
        else:
            days_without_match += 1
        day += timedelta(days=1)


def _fires_on(day: date, rule: WallClockRule, zone: ZoneInfo, skip_to: int) -> Iterator[datetime]:
    """The day's fires in order; on a day without transition those before local minute
    ``skip_to`` are skipped unseen (callers filter by instant anyway)."""
    midnight = datetime.combine(day, time())
    offset = _constant_offset(day, zone)
    if offset is not None:
        first = bisect.bisect_left(rule.minutes_of_day, skip_to)
        base = (midnight - offset).replace(tzinfo=UTC)
        return (base + timedelta(minutes=m) for m in rule.minutes_of_day[first:])
    instants = {
        instant
        for minute in rule.minutes_of_day
        for instant in _resolve(midnight + timedelta(minutes=minute), zone, rule)
    }
    return iter(sorted(instants))


def _resolve(local: datetime, zone: ZoneInfo, rule: WallClockRule) -> list[datetime]:
    """UTC instants a local wall-clock time stands for under the rules above."""
    earlier = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if earlier == later:
        return [earlier]
    if earlier < later:  # repeated (ambiguous) time: fold 0 is the first occurrence
        return [earlier, later] if rule.follows_elapsed_time else [earlier]
    # In a gap fold 0 maps past the transition and fold 1 before it (PEP 495).
    return [] if rule.follows_elapsed_time else [_transition_between(zone, later, earlier)]


def _transition_between(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in ``(before, after]`` whose UTC offset differs from
    ``before``'s: the instant a gap ends. Zone transitions fall on whole seconds."""
    old_offset = before.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _constant_offset(day: date, zone: ZoneInfo) -> timedelta | None:
    """The day's UTC offset, or None if a transition touches the day."""
    offsets = {
        datetime.combine(moment, time(), tzinfo=zone).replace(fold=fold).utcoffset()
        for moment in (day, day + timedelta(days=1))
        for fold in (0, 1)
    }
    offset = offsets.pop()
    return offset if not offsets else None

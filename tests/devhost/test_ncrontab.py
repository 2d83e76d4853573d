"""NCRONTAB: six fields, seconds first, evaluated like NCrontab (both day fields must match)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devhost.ncrontab import ScheduleError, parse_schedule

BASE = datetime(2025, 1, 15, 10, 2, 30, tzinfo=UTC)  # a Wednesday


def occurrences(expression: str, start: datetime, count: int) -> list[datetime]:
    schedule, found, moment = parse_schedule(expression), [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_every_five_minutes_fires_at_second_zero():
    assert occurrences("0 */5 * * * *", BASE, 3) == [
        datetime(2025, 1, 15, 10, 5, 0, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 10, 0, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 15, 0, tzinfo=UTC),
    ]


def test_first_field_is_seconds():
    assert occurrences("*/15 * * * * *", BASE, 3) == [
        datetime(2025, 1, 15, 10, 2, 45, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 3, 0, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 3, 15, tzinfo=UTC),
    ]


def test_next_occurrence_is_strictly_after_the_base_time():
    on_time = datetime(2025, 1, 15, 10, 5, 0, tzinfo=UTC)
    assert parse_schedule("0 */5 * * * *").next_after(on_time) == datetime(2025, 1, 15, 10, 10, 0, tzinfo=UTC)


def test_ranges_lists_and_stepped_ranges():
    schedule = parse_schedule("0 30 9-17/4,20 * * *")
    assert schedule.hours == frozenset({9, 13, 17, 20})
    assert parse_schedule("5/20 * * * * *").seconds == frozenset({5, 25, 45})  # N/S: from N to the end


def test_weekdays_and_month_names():
    # 09:30 on weekdays: from Wednesday evening the next is Thursday.
    evening = datetime(2025, 1, 15, 18, 0, 0, tzinfo=UTC)
    assert parse_schedule("0 30 9 * * 1-5").next_after(evening) == datetime(2025, 1, 16, 9, 30, tzinfo=UTC)
    # "at 9:30 AM every Monday in January" from Microsoft's NCRONTAB examples.
    assert parse_schedule("0 30 9 * Jan Mon").next_after(BASE) == datetime(2025, 1, 20, 9, 30, tzinfo=UTC)


def test_day_of_month_and_day_of_week_must_both_match():
    # The 13th that is a Friday (NCrontab ANDs the two day fields; Vixie cron would OR them).
    assert parse_schedule("0 0 0 13 * 5").next_after(BASE) == datetime(2025, 6, 13, 0, 0, tzinfo=UTC)


def test_day_31_skips_short_months():
    assert occurrences("0 0 0 31 * *", BASE, 2) == [
        datetime(2025, 1, 31, tzinfo=UTC),
        datetime(2025, 3, 31, tzinfo=UTC),
    ]


@pytest.mark.parametrize("expression", [
    "*/5 * * * *",        # five fields: the seconds are missing
    "60 * * * * *",       # second out of range
    "0 0 24 * * *",       # hour out of range
    "0 0 0 * * 7",        # NCrontab days of week are 0-6
    "0 0 0 * * Funday",
    "0 */0 * * * *",      # step 0
    "0 0 0 30 2 *",       # never happens
])
def test_invalid_or_impossible_schedules_are_refused(expression):
    with pytest.raises(ScheduleError):
        parse_schedule(expression).next_after(BASE)

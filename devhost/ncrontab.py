"""NCRONTAB schedules as the Functions timer trigger reads them: six fields, seconds first.

`{second} {minute} {hour} {day} {month} {day-of-week}`, each `*`, `N`, `A-B`, a list `A,B-C`, or a step
`*/S`, `A-B/S`, `N/S` (N to the end of the range); month and day names (Jan, Mon) are accepted. Like
NCrontab (atifaziz/NCrontab CrontabSchedule.cs, parsed with IncludingSeconds by
azure-webjobs-sdk-extensions Timers/Scheduling/CronSchedule.cs), day-of-month AND day-of-week must both
match, days of week are 0-6 from Sunday, and the next occurrence is strictly after the base time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names: the first name is the lowest value)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_SEARCH_LIMIT = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    pass


def _value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + low
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a valid {field}")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{field} {number} is outside {low}-{high}")
    return number


def _field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{step_text!r} is not a valid step in {field} {text!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field, low, high, names), _value(last, field, low, high, names)
        else:
            start = _value(base, field, low, high, names)
            end = high if step_text else start  # NCrontab: "N/S" runs from N to the end of the range
        if start > end:
            raise ScheduleError(f"{field} range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (same tzinfo as `moment`)."""
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + _SEARCH_LIMIT
        while candidate <= limit:
            if candidate.month not in self.months:
                month_start = candidate.replace(day=1, hour=0, minute=0, second=0)
                candidate = (month_start + timedelta(days=32)).replace(day=1)
            elif candidate.day not in self.days or (candidate.isoweekday() % 7) not in self.days_of_week:
                candidate = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        raise ScheduleError(f"schedule {self.expression!r} has no occurrence within five years")


def parse_schedule(expression: str) -> Schedule:
    parts = expression.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"NCRONTAB schedule {expression!r} must have six fields, seconds first, e.g. '0 */5 * * * *'"
        )
    fields = [_field(part, name, low, high, names) for part, (name, low, high, names) in zip(parts, _FIELDS,
                                                                                              strict=True)]
    return Schedule(expression, *fields)

"""NCRONTAB schedules (Azure Functions timers): which scheduled moment a run belongs to.

Pure. The timer fires at, say, 02:00:00.031, or hours late when ``use_monitor`` catches up a
run missed during downtime; either way the run belongs to the latest scheduled moment at or
before now, and that moment (the slot) names the snapshots it takes.

Six fields, seconds first: ``second minute hour day month day-of-week``. Each field is ``*``,
a number, a range ``a-b``, a step ``*/n``, ``a/n`` or ``a-b/n``, or a comma list of these;
months and days of the week may be named (JAN, MON). Day-of-week 0 and 7 are Sunday. A moment
matches when every field matches (day-of-month and day-of-week both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAYS = {name: n for n, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# (name, low, high, names) per field, in NCRONTAB order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
# Far enough back for any satisfiable schedule (29 February on a given weekday recurs within 28
# years); an unsatisfiable one (31 February) is reported instead of searched forever.
_SEARCH_DAYS = 366 * 30


class ScheduleError(ValueError):
    """Not an NCRONTAB expression this module understands."""


@dataclass(frozen=True, slots=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def matches_day(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python: Monday = 0
        return day.day in self.days and day.month in self.months and weekday in self.weekdays


def _number(token: str, names: dict[str, int], field: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise ScheduleError(f"{field}: {token!r} is not a number")
    return int(token)


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{field}: bad step in {item!r}")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, names, field), _number(last, names, field)
        else:
            start = _number(span, names, field)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ScheduleError(f"{field}: {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse(expression: str) -> Schedule:
    """Parse a six-field NCRONTAB expression (ScheduleError when malformed)."""
    parts = expression.split()
    if len(parts) != 6:
        raise ScheduleError(f"expected six fields, seconds first: {expression!r}")
    sets = [
        _parse_field(text, name, low, high, names)
        for text, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    seconds, minutes, hours, days, months, weekdays = (frozenset(s) for s in sets)
    return Schedule(
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(0 if d == 7 else d for d in weekdays),
    )


def _latest_time(schedule: Schedule, limit: time | None) -> time | None:
    """The latest matching time of day, at or before `limit` (None: end of day)."""
    for hour in sorted(schedule.hours, reverse=True):
        if limit is not None and hour > limit.hour:
            continue
        same_hour = limit is not None and hour == limit.hour
        for minute in sorted(schedule.minutes, reverse=True):
            if same_hour and limit is not None and minute > limit.minute:
                continue
            same_minute = same_hour and limit is not None and minute == limit.minute
            for second in sorted(schedule.seconds, reverse=True):
                if same_minute and limit is not None and second > limit.second:
                    continue
                return time(hour, minute, second)
    return None


def latest_occurrence(expression: str, now: datetime) -> datetime:
    """The latest moment at or before `now` (UTC, whole seconds) that the schedule names."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    schedule = parse(expression)
    now = now.astimezone(UTC).replace(microsecond=0)
    day = now.date()
    limit: time | None = now.time().replace(tzinfo=None)
    for _ in range(_SEARCH_DAYS):
        if schedule.matches_day(day):
            found = _latest_time(schedule, limit)
            if found is not None:
                return datetime.combine(day, found, tzinfo=UTC)
        day -= timedelta(days=1)
        limit = None
    raise ScheduleError(f"{expression!r} names no moment in the last {_SEARCH_DAYS} days")


def occurrences(expression: str, start: datetime, end: datetime) -> list[datetime]:
    """Every moment in [start, end] (UTC, whole seconds) that the schedule names, oldest first:
    the scheduled slots of a period."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    schedule = parse(expression)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    times = sorted(
        time(h, m, s) for h in schedule.hours for m in schedule.minutes for s in schedule.seconds
    )
    out: list[datetime] = []
    day = start.date()
    while day <= end.date():
        if schedule.matches_day(day):
            for moment in (datetime.combine(day, t, tzinfo=UTC) for t in times):
                if start <= moment <= end:
                    out.append(moment)
        day += timedelta(days=1)
    return out

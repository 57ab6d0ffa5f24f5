"""NCRONTAB: a run belongs to the latest scheduled moment at or before it started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.core.schedule import Schedule, ScheduleError, latest_occurrence, parse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "now", "slot"),
    [
        ("0 0 2 * * *", "2024-05-01T02:00:00.031", "2024-05-01T02:00:00"),
        ("0 0 2 * * *", "2024-05-01T05:13:09", "2024-05-01T02:00:00"),  # late (use_monitor)
        ("0 0 2 * * *", "2024-05-01T01:59:59", "2024-04-30T02:00:00"),
        ("0 0 2 * * *", "2024-01-01T00:00:00", "2023-12-31T02:00:00"),
        ("*/5 * * * * *", "2024-05-01T10:20:34", "2024-05-01T10:20:30"),
        ("0 */15 * * * *", "2024-05-01T10:44:59", "2024-05-01T10:30:00"),
        ("0 30 9 * * MON-FRI", "2024-05-05T12:00:00", "2024-05-03T09:30:00"),  # Sunday
        ("0 30 9 * * 1-5", "2024-05-06T09:29:59", "2024-05-03T09:30:00"),  # Monday early
        ("0 0 4 1 * *", "2024-05-20T00:00:00", "2024-05-01T04:00:00"),
        ("0 0 0 29 FEB *", "2027-03-01T00:00:00", "2024-02-29T00:00:00"),
        ("0 0 12 * * 0", "2024-05-08T00:00:00", "2024-05-05T12:00:00"),  # Sunday = 0
        ("0 0 12 * * 7", "2024-05-08T00:00:00", "2024-05-05T12:00:00"),  # and 7
        ("0 0 6,18 * * *", "2024-05-01T17:00:00", "2024-05-01T06:00:00"),
        ("10-20/5 0 0 * * *", "2024-05-01T00:00:59", "2024-05-01T00:00:20"),
    ],
)
def test_latest_occurrence(expression: str, now: str, slot: str) -> None:
    assert latest_occurrence(expression, at(now)) == at(slot)


@pytest.mark.parametrize(
    "expression",
    ["0 0 2 * *", "0 0 25 * * *", "0 0 2 * * * *", "x 0 2 * * *", "0 */0 * * * *", "0 5-1 * * * *"],
)
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expression)


def test_a_schedule_that_names_no_moment_is_reported() -> None:
    with pytest.raises(ScheduleError, match="names no moment"):
        latest_occurrence("0 0 0 31 FEB *", at("2024-05-01T00:00:00"))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        latest_occurrence("0 0 2 * * *", datetime(2024, 5, 1))


def matches(schedule: Schedule, moment: datetime) -> bool:
    return (
        schedule.matches_day(moment.date())
        and moment.hour in schedule.hours
        and moment.minute in schedule.minutes
        and moment.second in schedule.seconds
    )


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["0 0 2 * * *", "0 */7 * * * *", "15 30 */3 * * *", "0 0 0 * * MON"]),
)
def test_the_slot_matches_and_no_scheduled_moment_lies_between_it_and_now(
    naive: datetime, expression: str
) -> None:
    now = naive.replace(tzinfo=UTC)
    schedule = parse(expression)
    slot = latest_occurrence(expression, now)
    assert slot <= now and matches(schedule, slot)
    # Every sampled schedule fires on one fixed second of a minute: check minute by minute.
    moment = slot + timedelta(minutes=1)
    while moment <= now:
        assert not matches(schedule, moment), moment
        moment += timedelta(minutes=1)

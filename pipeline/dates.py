"""UTC days and ISO weeks (Monday to Sunday): the calendar of partitions, schedules and reports."""

from __future__ import annotations

import datetime as dt


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def week_start(day: dt.date) -> dt.date:
    """The Monday that starts `day`'s ISO week."""
    return day - dt.timedelta(days=day.weekday())


def iso_week(day: dt.date) -> str:
    """The name of `day`'s ISO week: 2026-11-16 -> '2026-W47'."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def iso_week_start(week: str) -> dt.date:
    """'2026-W47' -> the Monday that starts it."""
    try:
        year, num = week.upper().split("-W")
        return dt.date.fromisocalendar(int(year), int(num), 1)
    except ValueError:
        raise ValueError(f"{week!r} is not an ISO week like 2026-W47") from None

"""Calendar arithmetic as the law counts it (民法典 第202条, 第1259条)."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def add_years(day: date, years: int) -> date:
    """The same month and day ``years`` later; the month's last day when it has no such day.

    A period counted in years ends on the corresponding day; where that day does not exist
    (29 February in a common year) the last day of the month is the end (民法典 第202条).
    """
    year = day.year + years
    last = calendar.monthrange(year, day.month)[1]
    return day.replace(year=year, day=min(day.day, last))


def age_on(birth_date: date, on: date) -> int:
    """Full years completed on ``on``: the birthday itself completes the year."""
    years = on.year - birth_date.year
    if add_years(birth_date, years) > on:
        years -= 1
    return years


def today_in_shanghai(now: datetime) -> date:
    """The application date: the calendar day in Asia/Shanghai at the moment of decision."""
    return now.astimezone(SHANGHAI).date()

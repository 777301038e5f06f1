"""Working days: Monday to Friday, less public holidays, plus make-up working days (调休).

The calendar is data (``rules/calendar/working-days.yaml``), one entry per year of the State
Council's notice; the authority adds a year without a release. A date in a year the file
does not hold is an error, never a silent guess that a weekday is worked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

CALENDAR_FILE = Path("calendar") / "working-days.yaml"
CASES_FILE = Path("tests") / "calendar" / "working-days.yaml"
# How far ahead of today the calendar must reach: a referral's due date is 5 working days on,
# which a long holiday can stretch past two weeks.
HORIZON_DAYS = 60


class CalendarError(ValueError):
    """The calendar file is wrong, or does not cover a date asked of it."""


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date]
    makeup_working_days: frozenset[date]
    years: frozenset[int]
    review_due_working_days: int = 5
    reference: str = field(default="", compare=False)

    @property
    def last_day(self) -> date:
        return date(max(self.years), 12, 31)

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            raise CalendarError(
                f"the working-day calendar has no year {day.year}: add the State Council's "
                f"notice for it to {CALENDAR_FILE}"
            )
        if day in self.makeup_working_days:
            return True
        return day.isoweekday() <= 5 and day not in self.holidays

    def review_due(self, referred_on: date) -> date:
        """When a counter review referred that day is due (policy §9)."""
        return self.add_working_days(referred_on, self.review_due_working_days)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself not counted)."""
        day = start
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def working_days_left(self, today: date, due: date) -> int:
        """Working days after ``today`` up to ``due``: what a stopped clock keeps (0 if past)."""
        left, day = 0, today
        while day < due:
            day += timedelta(days=1)
            left += self.is_working_day(day)
        return left

    @classmethod
    def load(cls, rules_dir: Path) -> WorkingCalendar:
        path = rules_dir / CALENDAR_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CalendarError(f"{path}: cannot be read: {exc}") from exc
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: Any, where: str) -> WorkingCalendar:
        if not isinstance(data, dict) or data.get("kind") != "working_calendar":
            raise CalendarError(f"{where}: kind must be working_calendar")
        unknown = set(data) - {"kind", "reference", "years", "review_due_working_days"}
        if unknown:
            raise CalendarError(f"{where}: unknown keys {sorted(unknown)}")
        years = data.get("years")
        if not isinstance(years, dict) or not years:
            raise CalendarError(f"{where}: years: at least one year")
        holidays: set[date] = set()
        makeup: set[date] = set()
        for year, entry in years.items():
            at = f"{where}: years.{year}"
            if not isinstance(year, int) or not isinstance(entry, dict):
                raise CalendarError(f"{at}: a year and its holidays and makeup_working_days")
            if set(entry) - {"holidays", "makeup_working_days"}:
                raise CalendarError(f"{at}: only holidays and makeup_working_days")
            for i, item in enumerate(entry.get("holidays") or []):
                for day in _days(item, f"{at}.holidays[{i}]"):
                    if day.year != year:
                        raise CalendarError(f"{at}.holidays[{i}]: {day} is not in {year}")
                    holidays.add(day)
            for i, day in enumerate(entry.get("makeup_working_days") or []):
                if not isinstance(day, date) or day.year != year:
                    raise CalendarError(f"{at}.makeup_working_days[{i}]: a date in {year}")
                if day.isoweekday() <= 5:
                    raise CalendarError(
                        f"{at}.makeup_working_days[{i}]: {day} is a weekday, worked anyway"
                    )
                if day in holidays:
                    raise CalendarError(f"{at}.makeup_working_days[{i}]: {day} is a holiday")
                makeup.add(day)
        ordered = sorted(years)
        if ordered != list(range(ordered[0], ordered[-1] + 1)):
            raise CalendarError(f"{where}: years must follow each other without a gap")
        due = data.get("review_due_working_days", 5)
        if not isinstance(due, int) or isinstance(due, bool) or not 1 <= due <= 60:
            raise CalendarError(f"{where}: review_due_working_days: a whole number, 1 to 60")
        return cls(frozenset(holidays), frozenset(makeup), frozenset(ordered), due,
                   str(data.get("reference", "")))  # fmt: skip


def _days(item: Any, at: str) -> list[date]:
    if isinstance(item, date):
        return [item]
    if isinstance(item, dict) and set(item) == {"from", "to"}:
        start, end = item["from"], item["to"]
        if isinstance(start, date) and isinstance(end, date) and start <= end:
            return [start + timedelta(days=n) for n in range((end - start).days + 1)]
    raise CalendarError(f"{at}: a date, or {{from: date, to: date}} with from <= to")


def check_horizon(calendar: WorkingCalendar, today: date) -> None:
    """``CalendarError`` unless the calendar holds the days a due date may need from today."""
    needed = today + timedelta(days=HORIZON_DAYS)
    if calendar.last_day < needed:
        raise CalendarError(
            f"the working-day calendar ends on {calendar.last_day}, before {needed} "
            f"({HORIZON_DAYS} days from today): add next year's holidays to {CALENDAR_FILE}"
        )


@dataclass(frozen=True)
class CalendarCase:
    name: str
    ok: bool
    problem: str = ""


def run_cases(rules_dir: Path, calendar: WorkingCalendar) -> list[CalendarCase]:
    """The calendar's own test cases: a start, a number of working days, the due date."""
    path = rules_dir / CASES_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cases = data["cases"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise CalendarError(f"{path}: cannot be read: {exc}") from exc
    results = []
    for case in cases:
        try:
            due = calendar.add_working_days(case["from"], int(case["working_days"]))
        except (CalendarError, KeyError, TypeError, ValueError) as exc:
            results.append(CalendarCase(str(case.get("name")), False, str(exc)))
            continue
        ok = due == case["due"]
        results.append(
            CalendarCase(case["name"], ok, "" if ok else f"due {due}, expected {case['due']}")
        )
    return results

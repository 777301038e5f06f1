"""The working-day calendar: data the authority keeps, checked before it is used."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from miaopi.eligibility.calendar import (
    CALENDAR_FILE,
    CalendarError,
    WorkingCalendar,
    check_horizon,
    run_cases,
)
from tests.conftest import RULES


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.load(RULES)


def test_every_calendar_case_in_the_rules_passes(calendar: WorkingCalendar) -> None:
    results = run_cases(RULES, calendar)
    assert results, "the rules carry calendar cases"
    assert [(r.name, r.problem) for r in results if not r.ok] == []


def test_a_wrong_expectation_fails_its_case(calendar: WorkingCalendar, tmp_path: Path) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    cases = tmp_path / "rules" / "tests" / "calendar" / "working-days.yaml"
    cases.write_text(
        "cases:\n  - {name: wrong, from: 2026-09-24, working_days: 5, due: 2026-10-01}\n",
        encoding="utf-8",
    )
    [result] = run_cases(tmp_path / "rules", calendar)
    assert not result.ok
    assert "due 2026-10-09" in result.problem


def test_holidays_and_make_up_days_as_the_notice_says(calendar: WorkingCalendar) -> None:
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day, a Thursday
    assert not calendar.is_working_day(date(2026, 11, 21))  # a Saturday
    assert calendar.is_working_day(date(2026, 9, 20))  # a Sunday worked (调休)
    assert calendar.is_working_day(date(2026, 11, 20))  # a Friday


def test_a_year_the_calendar_does_not_hold_is_an_error_not_a_weekday(
    calendar: WorkingCalendar,
) -> None:
    with pytest.raises(CalendarError, match="no year 2031"):
        calendar.is_working_day(date(2031, 3, 3))
    with pytest.raises(CalendarError, match="no year 2028"):
        calendar.add_working_days(date(2027, 12, 29), 5)


def test_validation_refuses_a_calendar_that_ends_too_soon(calendar: WorkingCalendar) -> None:
    check_horizon(calendar, date(2026, 12, 6))
    with pytest.raises(CalendarError, match="ends on 2027-12-31"):
        check_horizon(calendar, date(2027, 11, 15))


def _with(**change: Any) -> dict[str, Any]:
    data = yaml.safe_load((RULES / CALENDAR_FILE).read_text(encoding="utf-8"))
    data["years"][2026] = {**data["years"][2026], **change}
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"makeup_working_days": [date(2026, 9, 21)]}, "is a weekday"),
        ({"makeup_working_days": [date(2026, 10, 3)]}, "is a holiday"),
        ({"holidays": [date(2027, 1, 1)]}, "is not in 2026"),
        ({"holidays": [{"from": date(2026, 10, 7), "to": date(2026, 10, 1)}]}, "from <= to"),
        ({"weekends": [6, 7]}, "only holidays and makeup_working_days"),
    ],
)
def test_a_mistake_in_the_file_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        WorkingCalendar.parse(_with(**change), "working-days.yaml")


def test_years_must_follow_each_other() -> None:
    data = yaml.safe_load((RULES / CALENDAR_FILE).read_text(encoding="utf-8"))
    del data["years"][2026]
    with pytest.raises(CalendarError, match="without a gap"):
        WorkingCalendar.parse(data, "working-days.yaml")

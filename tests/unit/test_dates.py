from datetime import date

import pytest

from miaopi.eligibility.dates import add_years, age_on


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1990, 11, 22), date(2026, 11, 21), 35),  # the day before the 36th birthday
        (date(1990, 11, 22), date(2026, 11, 22), 36),  # the birthday completes the year
        (date(2000, 2, 29), date(2026, 2, 27), 25),
        (date(2000, 2, 29), date(2026, 2, 28), 26),  # no 29 Feb: the month's last day
        (date(2000, 2, 29), date(2028, 2, 28), 27),
        (date(2000, 2, 29), date(2028, 2, 29), 28),
    ],
)
def test_age_counts_full_years_with_the_birthday_completing_the_year(
    birth: date, on: date, age: int
) -> None:
    assert age_on(birth, on) == age


def test_add_years_ends_on_the_months_last_day_when_the_day_does_not_exist() -> None:
    assert add_years(date(2024, 2, 29), 2) == date(2026, 2, 28)
    assert add_years(date(2024, 6, 30), 2) == date(2026, 6, 30)

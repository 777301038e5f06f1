"""The two national identifiers miaopi takes in, checked by their standards' check digits."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, Field
from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError
from stdnum.util import isdigits

_NOT_A_RESIDENT_ID = (
    "not a valid resident ID number (GB 11643-1999: its check digit, birth date or area)"
)


# Years, first to last (None: open), in which an area code was in use.
_Years = tuple[int | None, int | None]
_ALWAYS: _Years = (None, None)


@lru_cache(maxsize=8192)
def _area_years(area: str) -> tuple[_Years, ...]:
    """When GB 2260 had the six-digit area code, by stdnum's table; empty if never.

    What ``ric.get_birth_place`` decides, with the table looked up once per area instead of
    once per number: the lookup is four fifths of ``ric.validate`` (about 40 µs). Keyed by the
    year too, the cache missed for 492 of 500 numbers of the benchmark's population (its
    applicants come from thousands of areas and tens of birth years); there are about 6,900
    areas. An area says nothing of who anyone is. Where the table knows the province but not
    the county (``110199``), stdnum raises KeyError, and the request failed with a 500: such an
    area is not in use.
    """
    results = numdb.get("cn/loc").info(area)
    counties = {k: v for _, props in results for k, v in props.items()}.get("county")
    if counties is None:
        return ()
    years: list[_Years] = []
    for county in counties.split(","):
        if not county.startswith("["):
            return (_ALWAYS,)
        first, last = county[1:].split("]")[0].split("-")
        years.append((int(first) if first else None, int(last) if last else None))
    return tuple(years)


def _area_in_use(area: str, year: int) -> bool:
    return any(
        (first is None or first <= year) and (last is None or year <= last)
        for first, last in _area_years(area)
    )


def load_tables() -> None:
    """Read stdnum's table of areas now, and answer ``_area_years`` for every area it names.

    A server calls it before it exempts what startup built from garbage collection
    (``settle_for_serving``): read later, the table's ~14,000 objects, which never change,
    were walked by every full collection, with every request in flight waiting. Answered at
    the first number from each area instead, a fresh worker paid the lookup (~40 µs) for
    most applicants until its cache had seen thousands of areas: 1,179 of 1,500 decisions in
    the benchmark's population. Walking all ~6,900 takes about 0.2 s at startup.
    """
    table = numdb.get("cn/loc")  # what ric.get_birth_place reads; stdnum keeps it once read
    # Two-digit provinces, each with its four-digit counties, one code to a row (a row that
    # gave a range would warm its first code; the others are looked up when asked).
    for _, province, _, _, counties in table.prefixes:
        for _, county, _, _, _ in counties:
            _area_years(province + county)


def resident_id(value: str) -> str:
    """A GB 11643-1999 resident ID number in its standard form; ValueError if it is not one.

    Accepts exactly what ``ric.is_valid`` accepts (tests/unit/test_identifiers.py), in its
    order: length and digits, check digit, birth date, then the area at that date; where
    ``is_valid`` raises instead of answering (see ``_area_years``), refuses. stdnum also
    accepts full-width digits, as Chinese input methods type them; the number is given back in
    ASCII, upper-cased, so that registries, fraud bars and the stored case all see one person.
    """
    number = ric.compact(value)
    try:
        valid = (
            len(number) == 18
            and isdigits(number[:-1])
            and number[-1] == ric.calc_check_digit(number)
            and _area_in_use(number[:6], ric.get_birth_date(number).year)
        )
    except ValidationError:  # an impossible birth date
        valid = False
    if not valid:
        raise ValueError(_NOT_A_RESIDENT_ID)
    return number


def credit_code(value: str) -> str:
    """A GB 32100-2015 unified social credit code in its standard form (ASCII, upper-cased, as
    for resident IDs); ValueError if it is not one."""
    if not uscc.is_valid(value):
        raise ValueError("not a valid unified social credit code (GB 32100-2015)")
    return uscc.compact(value)


# The patterns document the shape (full-width digits too, as Chinese input methods type them);
# the validators check what a pattern cannot: the check character, the birth date, the area.
ResidentId = Annotated[
    str,
    Field(
        min_length=18,
        max_length=18,
        pattern="^[0-9０-９]{17}[0-9０-９XxＸｘ]$",
        description="GB 11643-1999 resident ID number (its check digit is checked too)",
    ),
    AfterValidator(resident_id),
]
CreditCode = Annotated[
    str,
    Field(
        min_length=18,
        max_length=18,
        pattern="^[0-9A-Za-z０-９Ａ-Ｚａ-ｚ]{18}$",
        description="GB 32100-2015 unified social credit code (its check character too)",
    ),
    AfterValidator(credit_code),
]

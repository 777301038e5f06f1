"""The two national identifiers miaopi takes in, checked by their standards' check digits."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, Field
from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError
from stdnum.util import isdigits

_NOT_A_RESIDENT_ID = "not a valid resident ID number (GB 11643-1999 check digit or date)"


@lru_cache(maxsize=8192)
def _area_in_use(area: str, year: int) -> bool:
    """Whether GB 2260 had the six-digit area code in that year, by stdnum's table.

    Looking an area up in that table is four fifths of ``ric.validate`` (about 40 µs); there are
    a few thousand areas and applicants cluster in a few, so most are looked up once. Neither
    an area nor a year says who anyone is.
    """
    try:
        ric.get_birth_place(f"{area}{year:04d}0101")  # reads the area and the year, nothing else
    except ValidationError:
        return False
    return True


def load_tables() -> None:
    """Read stdnum's table of areas now, not at the first resident ID number checked.

    A server calls it before it exempts what startup built from garbage collection
    (``settle_for_serving``): read later, the table's ~14,000 objects, which never change,
    were walked by every full collection, with every request in flight waiting.
    """
    numdb.get("cn/loc")  # what ric.get_birth_place reads; stdnum keeps it once read


def resident_id(value: str) -> str:
    """A GB 11643-1999 resident ID number in its standard form; ValueError if it is not one.

    Accepts exactly what ``ric.is_valid`` accepts (tests/unit/test_identifiers.py), in its
    order: length and digits, check digit, birth date, then the area at that date. stdnum also
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


ResidentId = Annotated[
    str,
    Field(min_length=18, max_length=18, description="GB 11643-1999 resident ID number"),
    AfterValidator(resident_id),
]
CreditCode = Annotated[
    str,
    Field(min_length=18, max_length=18, description="GB 32100-2015 unified social credit code"),
    AfterValidator(credit_code),
]

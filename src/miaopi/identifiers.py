"""The two national identifiers miaopi takes in, checked by their standards' check digits."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field
from stdnum.cn import ric, uscc


def resident_id(value: str) -> str:
    """A GB 11643-1999 resident ID number in its standard form; ValueError if it is not one.

    stdnum accepts full-width digits, as Chinese input methods type them; the number is given
    back in ASCII, upper-cased, so that registries, fraud bars and the stored case all see one
    person.
    """
    if not ric.is_valid(value):
        raise ValueError("not a valid resident ID number (GB 11643-1999 check digit or date)")
    return ric.compact(value)


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

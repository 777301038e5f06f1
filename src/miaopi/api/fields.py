"""Field types of request bodies: what each value must be, refused with a reason otherwise."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from miaopi.identifiers import CreditCode, ResidentId

# Which business types exist is the rules' to say: the app lists them in its OpenAPI document
# (api/app.py) and the use cases refuse a type no rule file defines.
BusinessTypeName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=40,
        description="A business type the rules define (GET /v1/rules)",
    ),
]


class InputModel(BaseModel):
    """A request body: strict, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


CertificateNo = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{4,40}$")]


def _printable(value: str) -> str:
    """NFC, and no character of Unicode's "other" categories: controls (NUL, a line break),
    format characters (a zero-width space, a byte-order mark, a right-to-left override),
    surrogates, private use or unassigned. A name with one of those in it is a client's
    encoding fault that the police name match would turn into a rejection on the applicant's
    record; it is refused before any registry is asked."""
    value = unicodedata.normalize("NFC", value)
    for char in value:
        if unicodedata.category(char).startswith("C"):
            raise ValueError(
                f"must not contain invisible or control characters (U+{ord(char):04X})"
            )
    return value


# Documented with a pattern for the usual ones; the validator refuses the whole category.
Printable = Annotated[
    str,
    AfterValidator(_printable),
    Field(
        json_schema_extra={
            "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u200b-\\u200f"
            "\\u202a-\\u202e\\u2060-\\u2064\\ufeff]*$"
        }
    ),
]


def _no_surrounding_space(value: object) -> object:
    if isinstance(value, str) and value != value.strip():
        raise ValueError("must not have spaces around it")
    return value


def _iso_date(value: object) -> object:
    """Only a JSON string YYYY-MM-DD is a date: a date-time, a number or a timestamp is not."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    if not isinstance(value, str | date) or isinstance(value, datetime):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


# An identifier is what the applicant's card or certificate says, exactly: spaces around it
# are refused, not stripped (a value longer than the field is the client's fault to see).
StrictResidentId = Annotated[ResidentId, BeforeValidator(_no_surrounding_space)]
StrictCreditCode = Annotated[CreditCode, BeforeValidator(_no_surrounding_space)]
IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    Field(json_schema_extra={"format": "date", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}),
]

"""Resident ID numbers and credit codes: stdnum's verdict, in their standard form.

``resident_id`` runs stdnum's steps itself so that it can cache the area lookup; these tests
hold it to ``ric.is_valid``'s verdict on numbers near the edges: areas that existed only in
some years, impossible dates, wrong check digits, stray characters.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import numdb
from stdnum.cn import ric

from miaopi.identifiers import _area_years, credit_code, load_tables, resident_id

# Areas that existed throughout, only until 2010, only from 1986, codes never assigned, and
# counties never assigned in a province that was.
AREAS = (
    "420102", "440305", "110103", "110104", "110111", "110112", "999999", "420100", "000000",
    "110199", "449999",
)  # fmt: skip


def _accepted(value: str) -> bool:
    try:
        resident_id(value)
    except ValueError:
        return False
    return True


def _stdnum_accepts(value: str) -> bool:
    """``ric.is_valid``, which raises KeyError for an area whose province stdnum's table has
    and whose county it has not (``110199``): such a number is refused."""
    try:
        return ric.is_valid(value)
    except KeyError:
        return False


def _with_check_digit(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


@settings(max_examples=400)
@given(
    area=st.sampled_from(AREAS),
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    serial=st.integers(0, 999),
    check_digit_right=st.booleans(),
)
def test_numbers_with_real_and_unassigned_areas_at_any_date(
    area: str, born: date, serial: int, check_digit_right: bool
) -> None:
    number = _with_check_digit(f"{area}{born:%Y%m%d}{serial:03d}")
    if not check_digit_right:
        number = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert _accepted(number) == _stdnum_accepts(number)


@settings(max_examples=400)
@given(st.text(alphabet="0123456789Xx ４２", min_size=18, max_size=18))  # with full-width 4 and 2
def test_any_eighteen_characters(value: str) -> None:
    assert _accepted(value) == _stdnum_accepts(value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("420102200203151232", True),
        ("420102200203151233", False),  # check digit
        ("420102200202301235", False),  # 30 February
        (_with_check_digit("11010320150101123"), False),  # Chongwen district was merged in 2010
        (_with_check_digit("11010320050101123"), True),
        ("４20102200203151232", True),  # full-width digits, as Chinese input methods type
        ("42010219900101123x", False),  # X is not its check digit
        ("110199199001011232", False),  # Beijing has no county 0199 (is_valid raises)
    ],
)
def test_examples(value: str, valid: bool) -> None:
    assert _accepted(value) is valid
    assert _stdnum_accepts(value) is valid


def test_numbers_come_back_in_their_standard_form() -> None:
    # Full-width digits, as Chinese input methods type them, are the same number.
    assert resident_id("４２0102200203151232") == "420102200203151232"
    assert resident_id("11010519491231002x") == "11010519491231002X"
    assert credit_code("９1440305ma5f1q2rxk") == "91440305MA5F1Q2RXK"


def test_a_server_answers_every_area_from_its_table_without_looking_it_up_again() -> None:
    # A server process calls load_tables at startup (settle_for_serving); before, a fresh
    # worker looked the table up for most applicants, each from an area it had not seen yet.
    load_tables()
    areas = [
        province + county
        for _, province, _, _, counties in numdb.get("cn/loc").prefixes
        for _, county, _, _, _ in counties
    ]
    assert len(areas) > 6800
    looked_up = _area_years.cache_info().misses
    for area in areas:
        number = _with_check_digit(f"{area}19900101123")
        assert _accepted(number) == _stdnum_accepts(number), number
    assert _area_years.cache_info().misses == looked_up

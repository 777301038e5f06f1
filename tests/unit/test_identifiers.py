"""Resident ID numbers and credit codes are taken in their standard form."""

from __future__ import annotations

from miaopi.identifiers import credit_code, resident_id


def test_numbers_come_back_in_their_standard_form() -> None:
    # Full-width digits, as Chinese input methods type them, are the same number.
    assert resident_id("４２0102200203151232") == "420102200203151232"
    assert resident_id("11010519491231002x") == "11010519491231002X"
    assert credit_code("９1440305ma5f1q2rxk") == "91440305MA5F1Q2RXK"

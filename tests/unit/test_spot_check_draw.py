"""The spot-check draw: exact, uniform, and recomputable from the seed alone."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date

import pytest

from miaopi.supervision.draw import (
    draw_value,
    has_ended,
    is_selected,
    new_seed,
    parse_period,
    period_of,
    seed_commitment,
)


def test_a_case_is_selected_iff_its_hmac_as_a_fraction_is_below_the_rate() -> None:
    seed = new_seed()
    for _ in range(200):
        case_id = secrets.token_urlsafe(16)
        digest = hmac.new(bytes.fromhex(seed), case_id.encode(), hashlib.sha256).digest()
        # rate 0.5: selected iff the top bit is 0; rate 0.25: iff the top two bits are 0.
        assert is_selected(seed, case_id, "0.5") == (digest[0] < 0x80)
        assert is_selected(seed, case_id, "0.25") == (digest[0] < 0x40)


def test_the_comparison_is_exact_at_the_boundary() -> None:
    # A rate equal to the draw's own fraction does not select it; one 2^-256 more does.
    seed = new_seed()
    for _ in range(200):
        case_id = secrets.token_urlsafe(16)
        drawn = draw_value(seed, case_id)
        assert not is_selected(seed, case_id, f"{drawn}/{2**256}")
        assert is_selected(seed, case_id, f"{drawn + 1}/{2**256}")


def test_rate_one_selects_every_case_and_rate_zero_none() -> None:
    seed = new_seed()
    ids = [secrets.token_urlsafe(16) for _ in range(500)]
    assert all(is_selected(seed, i, "1") for i in ids)
    assert not any(is_selected(seed, i, "0") for i in ids)


@pytest.mark.parametrize("rate", ["0.025", "0.05"])
def test_selection_frequency_matches_the_rate(rate: str) -> None:
    seed, n = new_seed(), 40_000
    hits = sum(is_selected(seed, secrets.token_urlsafe(16), rate) for _ in range(n))
    p = float(rate)
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(hits - n * p) < 5 * sd  # a false alarm once in ~3.5 million runs


def test_the_seed_decides_the_draw_and_its_commitment_binds_it() -> None:
    a, b = new_seed(), new_seed()
    ids = [secrets.token_urlsafe(16) for _ in range(400)]
    assert [is_selected(a, i, "0.5") for i in ids] != [is_selected(b, i, "0.5") for i in ids]
    assert seed_commitment(a) == hashlib.sha256(bytes.fromhex(a)).hexdigest()
    assert seed_commitment(a) != seed_commitment(b)


def test_periods_are_calendar_months() -> None:
    assert period_of(date(2026, 10, 31)) == "2026-10"
    assert parse_period("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert not has_ended("2026-10", date(2026, 10, 31))
    assert has_ended("2026-10", date(2026, 11, 1))
    for bad in ("2026-13", "2026-1", "26-10", "2026-10-01", "0000-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_period(bad)

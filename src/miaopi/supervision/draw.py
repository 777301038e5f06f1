"""The verifiable spot-check draw (双随机一公开, policy.md §8).

A case is selected iff HMAC-SHA256(period seed, case id), read as a big-endian integer and so as
a fraction of 2^256, is below the rate of its employer's risk class. The seed of each calendar
month (Asia/Shanghai) is secret while the month runs — only its SHA-256 is shown, which binds
the service to it — and published once the month has ended, so anyone can recompute the draw.
The comparison is exact: the rate is a decimal string and compared as a fraction.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import secrets
from datetime import date
from fractions import Fraction

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_period(text: str) -> tuple[date, date]:
    """First and last day of a ``YYYY-MM`` period; ValueError when it is not one."""
    match = _PERIOD.match(text)
    if not match or int(match[1]) < 1:
        raise ValueError("a period is a month, written YYYY-MM")
    year, month = int(match[1]), int(match[2])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def has_ended(period: str, today: date) -> bool:
    return today > parse_period(period)[1]


def new_seed() -> str:
    return secrets.token_hex(32)


def seed_commitment(seed: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def draw_value(seed: str, case_id: str) -> int:
    digest = hmac.new(bytes.fromhex(seed), case_id.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def is_selected(seed: str, case_id: str, rate: str) -> bool:
    fraction = Fraction(rate)
    return draw_value(seed, case_id) * fraction.denominator < fraction.numerator * 2**256

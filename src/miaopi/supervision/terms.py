"""The supervision terms a ruleset sets for the approvals decided under it (policy.md §8).

They are rule parameters, not code: the spot-check rate of each employer risk class, when audit
tasks fall due, and the window of the periodic re-check. A case keeps the terms of the version
that decided it, like it keeps that version's criteria.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

RISK_CLASSES = ("A", "B", "C", "D")


class TermsError(ValueError):
    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter, self.reason = parameter, reason
        super().__init__(f"parameters.{parameter}: {reason}")


def _rate(value: Any, risk_class: str) -> str:
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        rate = Decimal("NaN")
    if isinstance(value, bool) or not rate.is_finite() or not 0 <= rate <= 1:
        raise TermsError(f"spot_check_rates.{risk_class}", "must be a number from 0 to 1")
    # Published as written, so an outsider recomputing the draw uses exactly this number.
    return format(rate.normalize(), "f")


def _days(parameters: dict[str, Any], name: str) -> int:
    value = parameters.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TermsError(name, "must be a whole number of days, 0 or more")
    return value


@dataclass(frozen=True, slots=True)
class SupervisionTerms:
    spot_check_rates: dict[str, str]  # risk class → exact decimal, e.g. "0.025"
    audit_due_days: int
    recheck_from_days: int
    recheck_until_days: int

    @classmethod
    def of(cls, parameters: dict[str, Any]) -> SupervisionTerms:
        table = parameters.get("spot_check_rates")
        if not isinstance(table, dict):
            raise TermsError("spot_check_rates", "a table of rates by risk class is required")
        missing = [c for c in RISK_CLASSES if c not in table]
        if missing:
            raise TermsError("spot_check_rates", f"no rate for risk class {', '.join(missing)}")
        extra = sorted(set(table) - set(RISK_CLASSES))
        if extra:
            raise TermsError("spot_check_rates", f"unknown risk class {', '.join(extra)}")
        terms = cls(
            spot_check_rates={c: _rate(table[c], c) for c in RISK_CLASSES},
            audit_due_days=_days(parameters, "audit_due_days"),
            recheck_from_days=_days(parameters, "recheck_from_days"),
            recheck_until_days=_days(parameters, "recheck_until_days"),
        )
        if terms.recheck_until_days < terms.recheck_from_days:
            raise TermsError("recheck_until_days", "ends before recheck_from_days")
        return terms

    def rate_for(self, risk_class: str | None) -> str:
        # An employer whose class is not known is checked every time.
        return self.spot_check_rates.get(risk_class or "", "1")

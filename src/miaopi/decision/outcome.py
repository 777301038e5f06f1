"""The outcome of a case from its criterion results (policy.md §4)."""

from __future__ import annotations

from collections.abc import Iterable

from miaopi.domain import Outcome
from miaopi.eligibility.evaluate import CriterionOutcome


def outcome(criteria: Iterable[CriterionOutcome]) -> Outcome:
    """rejected if a reject-mode criterion fails; else referred if anything is unknown or a
    refer-mode criterion fails; else approved. No criteria proves nothing: referred."""
    items = list(criteria)
    if any(c.result == "fail" and c.on_fail == "reject" for c in items):
        return "rejected"
    if not items or any(c.result == "unknown" or c.result == "fail" for c in items):
        return "referred"
    return "approved"

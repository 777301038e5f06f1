"""The outcome of a case from its criterion results (policy.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

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


def live_approval_held(
    criteria: Iterable[CriterionOutcome], number: str | None
) -> tuple[CriterionOutcome, ...]:
    """The criteria with ``no_live_approval`` failed, naming the approval that holds (policy
    §5): what an approval becomes when another of the person's committed first."""
    return tuple(
        replace(c, result="fail", facts={**c.facts, "latest_prior_approval_number": number})
        if c.id == "no_live_approval"
        else c
        for c in criteria
    )

"""What an officer's decision must resolve, and what it can never override (policy §9)."""

from __future__ import annotations

import pytest

from miaopi.usecases.errors import InvalidInput
from miaopi.usecases.reviews import Resolution, ReviewDecision, check_decision, to_resolve

CRITERIA = [
    {"id": "identity_verified", "result": "pass", "on_fail": "reject"},
    {"id": "full_time_study", "result": "fail", "on_fail": "reject"},
    {"id": "good_credit", "result": "fail", "on_fail": "refer"},
    {"id": "degree_verified", "result": "unknown", "on_fail": "reject"},
]


def _note(criterion: str, result: str = "pass") -> Resolution:
    return Resolution(criterion, result, "note", note="seen at the counter")  # type: ignore[arg-type]


def test_unknown_and_refer_mode_failures_are_open_reject_mode_failures_final() -> None:
    assert to_resolve(CRITERIA) == ({"good_credit", "degree_verified"}, {"full_time_study"})


def test_a_reject_mode_failure_can_never_be_overridden() -> None:
    decision = ReviewDecision("approved", None, (
        _note("good_credit"), _note("degree_verified"), _note("full_time_study"),
    ))  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        check_decision(decision, CRITERIA)
    assert refused.value.loc == ["body", "resolutions", 2, "criterion"]
    assert "never be overridden" in str(refused.value)


def test_an_unknown_reject_mode_criterion_may_be_resolved_either_way() -> None:
    check_decision(
        ReviewDecision("approved", None, (_note("good_credit"), _note("degree_verified"))),
        CRITERIA,
    )
    check_decision(
        ReviewDecision(
            "rejected", "forged", (_note("good_credit"), _note("degree_verified", "fail"))
        ),
        CRITERIA,
    )

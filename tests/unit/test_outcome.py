import pytest

from miaopi.decision.outcome import outcome
from miaopi.eligibility.evaluate import CriterionOutcome


def c(result: str, on_fail: str) -> CriterionOutcome:
    return CriterionOutcome("x", result, on_fail, {"en": "x"}, "ref", {}, ())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ([c("pass", "reject"), c("pass", "refer")], "approved"),
        ([c("fail", "reject"), c("unknown", "refer")], "rejected"),
        ([c("fail", "refer"), c("pass", "reject")], "referred"),
        ([c("unknown", "reject"), c("pass", "refer")], "referred"),
        ([c("fail", "refer"), c("fail", "reject")], "rejected"),
        ([], "referred"),
    ],
)
def test_outcome_follows_policy_section_4(criteria, expected) -> None:
    assert outcome(criteria) == expected

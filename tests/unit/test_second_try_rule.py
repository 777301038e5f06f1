"""Which referrals are decided again (policy §9): only those owed to registries that did not
answer; never one a registry answered, nor a refer-mode failure."""

from __future__ import annotations

from typing import Any

import pytest

from miaopi.decision.second_try import to_ask_again


def criterion(id_: str, result: str, *registries: str, on_fail: str = "reject") -> dict[str, Any]:
    return {"id": id_, "result": result, "on_fail": on_fail, "registries": list(registries)}


def evidence(registry: str, query: str, status: str) -> dict[str, Any]:
    return {"registry": registry, "query": query, "status": status}


ANSWERED = [evidence("police", "person", "ok"), evidence("credit", "person", "ok")]


@pytest.mark.parametrize("fault", ["unavailable", "invalid"])
def test_a_referral_owed_only_to_a_registry_that_did_not_answer_asks_it_again(fault: str) -> None:
    criteria = [criterion("identity_verified", "pass", "police"),
                criterion("degree_verified", "unknown", "education")]  # fmt: skip
    found = [*ANSWERED, evidence("education", "diplomas_of", fault)]
    assert to_ask_again(criteria, found) == [("education", "diplomas_of")]


@pytest.mark.parametrize(
    ("criteria", "found"),
    [
        # The registry answered: no record. Asking again would answer the same.
        ([criterion("degree_verified", "unknown", "education")],
         [*ANSWERED, evidence("education", "diplomas_of", "no_record")]),
        # A refer-mode failure is for an officer, whatever else is unknown.
        ([criterion("no_criminal_record", "fail", "police", on_fail="refer"),
          criterion("degree_verified", "unknown", "education")],
         [*ANSWERED, evidence("education", "diplomas_of", "unavailable")]),
        # Unknown although its registry answered (a fact the answer lacks).
        ([criterion("good_credit", "unknown", "credit"),
          criterion("degree_verified", "unknown", "education")],
         [*ANSWERED, evidence("education", "diplomas_of", "unavailable")]),
        # One of a criterion's registries said "no record" while another failed.
        ([criterion("degree_verified", "unknown", "education", "overseas_credentials")],
         [evidence("education", "diplomas_of", "unavailable"),
          evidence("overseas_credentials", "certifications_of", "no_record")]),
        # Nothing unknown: nothing a registry could change.
        ([criterion("identity_verified", "pass", "police")], ANSWERED),
    ],
)  # fmt: skip
def test_a_referral_a_registry_could_not_change_is_not_tried_again(
    criteria: list[dict[str, Any]], found: list[dict[str, Any]]
) -> None:
    assert to_ask_again(criteria, found) is None

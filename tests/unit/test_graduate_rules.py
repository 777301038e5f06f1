"""The graduate rules (policy §5, §6) judged over facts, criterion by criterion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest

from miaopi.decision.outcome import outcome
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import evaluate
from miaopi.eligibility.ruleset import RuleBook

DAY = date(2026, 11, 22)
APPROVABLE: dict[str, Any] = {
    "application_date": DAY,
    "police_name_matches": True,
    "police_status": "normal",
    "police_birth_date_matches_id": True,
    "hukou_region": "420102",
    "criminal_record_count": 0,
    "age": 24,
    "dishonest_debtor": False,
    "severe_dishonesty": False,
    "fraud_bar_count": 0,
    "latest_fraud_bar_on": None,
    "prior_approval_count": 0,
    "latest_prior_approval_on": None,
    "latest_prior_approval_number": None,
    "employer_status": "active",
    "employer_region": "440305",
    "employer_severe_dishonesty": False,
    "diploma_holder_is_applicant": True,
    "diploma_status": "valid",
    "diploma_level": "bachelor",
    "diploma_study_mode": "full_time",
    "graduation_date": date(2026, 6, 30),
}


def judge(
    rulebook: RuleBook, engine: RuleEngine, day: date = DAY, **changes: Any
) -> tuple[str, dict[str, str], dict[str, dict[str, Any]]]:
    facts = {**APPROVABLE, "application_date": day, **changes}
    ruleset = rulebook.in_force("graduate", day)
    assert ruleset is not None
    result = evaluate(engine, ruleset, facts)
    return (
        outcome(result.criteria),
        {c.id: c.result for c in result.criteria},
        {c.id: c.facts for c in result.criteria},
    )


def test_every_criterion_passes_for_an_eligible_graduate(rulebook, rule_engine) -> None:
    verdict, results, _ = judge(rulebook, rule_engine)
    assert verdict == "approved"
    assert set(results.values()) == {"pass"}
    assert set(results) == {
        "identity_verified",
        "no_criminal_record",
        "not_local_hukou",
        "good_credit",
        "no_fraud_bar",
        "no_live_approval",
        "employer_eligible",
        "degree_verified",
        "full_time_study",
        "degree_level_eligible",
        "within_graduation_window",
        "age_within_cap",
    }


@pytest.mark.parametrize(
    ("changes", "criterion", "verdict"),
    [
        ({"police_name_matches": False}, "identity_verified", "rejected"),
        ({"police_status": "deceased"}, "identity_verified", "rejected"),
        ({"police_birth_date_matches_id": False}, "identity_verified", "rejected"),
        ({"criminal_record_count": 1}, "no_criminal_record", "referred"),
        ({"hukou_region": "440304"}, "not_local_hukou", "rejected"),
        ({"dishonest_debtor": True}, "good_credit", "referred"),
        ({"severe_dishonesty": True}, "good_credit", "referred"),
        (
            {"fraud_bar_count": 1, "latest_fraud_bar_on": date(2024, 5, 10)},
            "no_fraud_bar",
            "rejected",
        ),
        ({"employer_status": "revoked"}, "employer_eligible", "referred"),
        ({"employer_region": "440106"}, "employer_eligible", "referred"),
        ({"employer_severe_dishonesty": True}, "employer_eligible", "referred"),
        ({"diploma_holder_is_applicant": False}, "degree_verified", "rejected"),
        ({"diploma_status": "revoked"}, "degree_verified", "rejected"),
        ({"diploma_study_mode": "part_time"}, "full_time_study", "rejected"),
        ({"graduation_date": date(2023, 6, 30)}, "within_graduation_window", "rejected"),
        ({"graduation_date": date(2027, 6, 30)}, "within_graduation_window", "rejected"),
        ({"age": 36}, "age_within_cap", "rejected"),
    ],
)
def test_a_failed_criterion_decides_by_its_mode(
    rulebook, rule_engine, changes: dict[str, Any], criterion: str, verdict: str
) -> None:
    got, results, _ = judge(rulebook, rule_engine, **changes)
    assert results[criterion] == "fail"
    assert [c for c, r in results.items() if r != "pass"] == [criterion]
    assert got == verdict


@pytest.mark.parametrize(
    ("missing", "unknown"),
    [
        # the police registry did not answer
        (
            [
                "police_name_matches",
                "police_status",
                "police_birth_date_matches_id",
                "hukou_region",
                "criminal_record_count",
                "age",
            ],
            {"identity_verified", "no_criminal_record", "not_local_hukou", "age_within_cap"},
        ),
        # no diploma found at CHSI
        (
            [
                "diploma_holder_is_applicant",
                "diploma_status",
                "diploma_level",
                "diploma_study_mode",
                "graduation_date",
            ],
            {
                "degree_verified",
                "full_time_study",
                "degree_level_eligible",
                "within_graduation_window",
                "age_within_cap",
            },
        ),
        (
            ["dishonest_debtor", "severe_dishonesty", "fraud_bar_count", "latest_fraud_bar_on"],
            {"good_credit", "no_fraud_bar"},
        ),
        (
            ["employer_status", "employer_region", "employer_severe_dishonesty"],
            {"employer_eligible"},
        ),
    ],
)
def test_missing_evidence_is_unknown_and_never_approved(
    rulebook, rule_engine, missing: list[str], unknown: set[str]
) -> None:
    verdict, results, _ = judge(rulebook, rule_engine, **dict.fromkeys(missing))
    assert {c for c, r in results.items() if r == "unknown"} == unknown
    assert verdict == "referred"


def test_proven_rejection_wins_over_missing_evidence(rulebook, rule_engine) -> None:
    verdict, results, _ = judge(
        rulebook,
        rule_engine,
        hukou_region="440304",
        dishonest_debtor=None,
        severe_dishonesty=None,
        fraud_bar_count=None,
        latest_fraud_bar_on=None,
    )
    assert results["good_credit"] == "unknown"
    assert verdict == "rejected"


def test_age_cap_admits_the_day_before_the_36th_birthday_and_not_the_birthday(
    rulebook, rule_engine
) -> None:
    # Bachelor cap is 35 under 2021.08: 35 passes until the 36th birthday.
    _, results, facts = judge(rulebook, rule_engine, age=35)
    assert results["age_within_cap"] == "pass"
    assert facts["age_within_cap"]["cap"] == 35
    _, results, _ = judge(rulebook, rule_engine, age=36)
    assert results["age_within_cap"] == "fail"


@pytest.mark.parametrize(("level", "cap"), [("bachelor", 35), ("master", 40), ("doctorate", 45)])
def test_age_cap_depends_on_the_level(rulebook, rule_engine, level: str, cap: int) -> None:
    _, at_cap, _ = judge(rulebook, rule_engine, diploma_level=level, age=cap)
    _, over_cap, _ = judge(rulebook, rule_engine, diploma_level=level, age=cap + 1)
    assert (at_cap["age_within_cap"], over_cap["age_within_cap"]) == ("pass", "fail")


def test_graduation_window_includes_its_second_anniversary(rulebook, rule_engine) -> None:
    graduated = date(2024, 11, 22)
    _, results, facts = judge(rulebook, rule_engine, graduation_date=graduated)
    assert results["within_graduation_window"] == "pass"
    assert facts["within_graduation_window"]["window_ends_on"] == "2026-11-22"
    _, results, _ = judge(rulebook, rule_engine, graduation_date=date(2024, 11, 21))
    assert results["within_graduation_window"] == "fail"
    _, results, _ = judge(rulebook, rule_engine, graduation_date=DAY)  # graduation day itself
    assert results["within_graduation_window"] == "pass"


def test_fraud_bar_covers_its_fifth_anniversary_and_ends_the_day_after(
    rulebook, rule_engine
) -> None:
    bar = {"fraud_bar_count": 1, "latest_fraud_bar_on": date(2021, 11, 22)}
    _, results, facts = judge(rulebook, rule_engine, **bar)
    assert results["no_fraud_bar"] == "fail"
    assert facts["no_fraud_bar"]["bar_ends_on"] == "2026-11-22"
    later = date(2026, 11, 23)
    _, results, _ = judge(rulebook, rule_engine, day=later, **bar)
    assert results["no_fraud_bar"] == "pass"


def test_version_switches_on_2021_08_01(rulebook, rule_engine) -> None:
    old = rulebook.in_force("graduate", date(2021, 7, 31))
    new = rulebook.in_force("graduate", date(2021, 8, 1))
    assert (old.version, new.version) == ("2016.09", "2021.08")
    assert old.fingerprint != new.fingerprint
    assert rulebook.in_force("graduate", date(2016, 8, 31)) is None

    # A 40-year-old bachelor passed the age cap (45) on the last day of 2016.09 only.
    facts = {"age": 40, "graduation_date": date(2021, 6, 30)}
    _, results, _ = judge(rulebook, rule_engine, day=date(2021, 7, 31), **facts)
    assert results["age_within_cap"] == "pass"
    _, results, _ = judge(rulebook, rule_engine, day=date(2021, 8, 1), **facts)
    assert results["age_within_cap"] == "fail"


def test_junior_college_graduates_are_referred_since_2021_08(rulebook, rule_engine) -> None:
    facts = {"diploma_level": "junior_college", "graduation_date": date(2021, 6, 30), "age": 22}
    verdict, results, _ = judge(rulebook, rule_engine, day=date(2021, 7, 31), **facts)
    assert verdict == "approved"
    verdict, results, facts_used = judge(rulebook, rule_engine, day=date(2021, 8, 1), **facts)
    assert results["degree_level_eligible"] == "fail"
    # The 2021.08 version defines no junior-college cap: not provable, so not passed.
    assert results["age_within_cap"] == "unknown"
    assert facts_used["age_within_cap"]["cap"] is None
    assert verdict == "referred"


def test_a_ruleset_holds_no_live_sessions_after_many_evaluations(rulebook) -> None:
    engine = RuleEngine()
    for _ in range(1500):  # more than the 1,024 live sessions a durable ruleset allows
        judge(rulebook, engine)
        # A missing fact takes the evaluation through all three passes, each its own session.
        judge(rulebook, engine, criminal_record_count=None)
    verdict, _, _ = judge(rulebook, engine)
    assert verdict == "approved"
    verdict, results, _ = judge(rulebook, engine, criminal_record_count=None)
    assert (verdict, results["no_criminal_record"]) == ("referred", "unknown")


def test_the_engine_refuses_a_thread_other_than_its_first(rulebook) -> None:
    engine = RuleEngine()
    judge(rulebook, engine)
    with ThreadPoolExecutor(1) as pool:
        refused = pool.submit(judge, rulebook, engine)
        with pytest.raises(RuntimeError, match="event loop's thread"):
            refused.result()
    assert judge(rulebook, engine)[0] == "approved"

"""Kleene logic inside and across branches: a proven-false condition fails its branch even when
other facts are unknown; alternatives are unknown only while none is proven either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import evaluate
from miaopi.eligibility.ruleset import RuleBook

RULE_FILE = """
kind: business_type
business_type: postdoc
title: {zh: 测试, en: Test}
claims: []
versions:
  - version: "2030.01"
    effective_from: 2030-01-01
    reference: test
    parameters:
      levels: [master, doctorate]
      spot_check_rates: {A: 0.025, B: 0.05, C: 1, D: 1}
      audit_due_days: 90
      recheck_from_days: 30
      recheck_until_days: 90
criteria:
  - id: either_path
    on_fail: reject
    description: {zh: 任一路径, en: Either path}
    reference: test
    pass_when:
      any:
        - - {fact: diploma_status, eq: valid}
          - {fact: diploma_level, in: {param: levels}}
        - - {fact: criminal_record_count, eq: 0}
          - {fact: hukou_region, starts_with: "42"}
"""


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rules = Path(tmp_path_factory.mktemp("rules"))
    (rules / "postdoc.yaml").write_text(RULE_FILE, encoding="utf-8")
    ruleset = RuleBook.load(rules, "4403").rulesets[0]
    engine = RuleEngine()

    def run(**facts: object) -> str:
        full = dict.fromkeys(ruleset.facts)
        full.update(facts)
        return evaluate(engine, ruleset, full).criteria[0].result

    return run


@pytest.mark.parametrize(
    ("facts", "result"),
    [
        ({"diploma_status": "valid", "diploma_level": "master"}, "pass"),
        ({"criminal_record_count": 0, "hukou_region": "420102"}, "pass"),
        # first path proven false, second unknown: cannot be decided
        ({"diploma_status": "valid", "diploma_level": "bachelor"}, "unknown"),
        # second path proven false by one condition although its other fact is unknown
        (
            {"diploma_status": "valid", "diploma_level": "bachelor", "criminal_record_count": 2},
            "fail",
        ),
        ({"diploma_status": "revoked", "hukou_region": "330106"}, "fail"),
        ({}, "unknown"),
        # one condition known and true, the rest unknown: still unknown
        ({"diploma_status": "valid", "criminal_record_count": 0}, "unknown"),
    ],
)
def test_alternatives_follow_kleene_logic(judge, facts: dict[str, object], result: str) -> None:
    assert judge(**facts) == result

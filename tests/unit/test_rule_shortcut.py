"""The engine's shortcuts decide exactly what asking branch by branch, with every fact, decides.

The shortcuts: one rule that every criterion holds, asked first; and the conditions of
undecided branches asked with those conditions' facts alone.

Facts start from the rule files' own test cases (eligible applicants and every edge they
name); hypothesis then blanks some (a registry that did not answer) and swaps others for
values the cases give that fact elsewhere, so both the shortcut and its fall-back run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miaopi.eligibility.casetests import _typed, load_all
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import evaluate
from miaopi.eligibility.ruleset import RuleBook
from tests.conftest import RULES

FILES = load_all(RULES)
CASES = [(file, case) for _, file in FILES for case in file.cases]
VALUES: dict[str, list[Any]] = defaultdict(list)
for _, file in FILES:
    for case in file.cases:
        for name, value in {**file.defaults, **case.facts}.items():
            typed = _typed(name, value)
            if typed not in VALUES[name]:
                VALUES[name].append(typed)


@pytest.fixture(scope="module")
def engines() -> tuple[RuleEngine, RuleEngine]:
    return RuleEngine(), RuleEngine(shortcuts=False)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_shortcut_and_the_branches_agree(
    rulebook: RuleBook, engines: tuple[RuleEngine, RuleEngine], data: st.DataObject
) -> None:
    file, case = data.draw(st.sampled_from(CASES))
    ruleset = rulebook.in_force(file.business_type, case.as_of)
    assert ruleset is not None
    facts = dict.fromkeys(ruleset.facts)
    facts.update({n: _typed(n, v) for n, v in {**file.defaults, **case.facts}.items()})
    facts["application_date"] = case.as_of
    for name in data.draw(st.sets(st.sampled_from(sorted(ruleset.facts)), max_size=4)):
        pool = [None, *VALUES.get(name, [])]
        facts[name] = data.draw(st.sampled_from(pool), label=name)

    shortcut, branches = (evaluate(engine, ruleset, facts) for engine in engines)
    assert [(c.id, c.result, c.facts) for c in shortcut.criteria] == [
        (c.id, c.result, c.facts) for c in branches.criteria
    ]


def test_an_eligible_applicant_takes_the_shortcut(rulebook: RuleBook) -> None:
    """Every case file's defaults describe an applicant who passes everything."""
    engine = RuleEngine()
    for _, file in FILES:
        case = file.cases[0]
        ruleset = rulebook.in_force(file.business_type, case.as_of)
        assert ruleset is not None
        facts = dict.fromkeys(ruleset.facts)
        facts.update({n: _typed(n, v) for n, v in file.defaults.items()})
        facts["application_date"] = case.as_of
        assert engine.run(ruleset, facts).all_passed, file.business_type


def _rule_file(criteria: int, branches: int, conditions: int) -> str:
    """Criteria whose branches compare facts with facts: each comparison costs durable an
    expression, so the shortcut must be split across rules (or given up) to register."""
    same_day = "\n".join(
        "          - {fact: application_date, " + op + ": {fact: graduation_date}}"
        for op in (["gte", "lte"] * conditions)[:conditions]
    )
    alternative = "        - \n" + same_day
    body = "\n".join(
        f"""  - id: c{i}
    on_fail: reject
    description: {{zh: 测试, en: Test}}
    reference: test
    pass_when:
      any:
{chr(10).join([alternative] * branches)}"""
        for i in range(criteria)
    )
    return f"""kind: business_type
business_type: postdoc
title: {{zh: 测试, en: Test}}
claims: []
versions:
  - version: "2030.01"
    effective_from: 2030-01-01
    reference: test
    parameters:
      spot_check_rates: {{A: 0.025, B: 0.05, C: 1, D: 1}}
      audit_due_days: 90
      recheck_from_days: 30
      recheck_until_days: 90
criteria:
{body}
"""


@pytest.mark.parametrize(
    ("criteria", "branches", "conditions", "shortcut"),
    [
        (12, 2, 1, True),  # 96 expressions: four rules of at most 31
        (1, 6, 3, False),  # one criterion of 32: it cannot be one rule, so no shortcut
    ],
)
def test_a_shortcut_too_big_for_one_rule_is_split_or_given_up(
    tmp_path: Path, criteria: int, branches: int, conditions: int, shortcut: bool
) -> None:
    (tmp_path / "postdoc.yaml").write_text(
        _rule_file(criteria, branches, conditions), encoding="utf-8"
    )
    ruleset = RuleBook.load(tmp_path, "4403").rulesets[0]
    facts = dict.fromkeys(ruleset.facts)
    day = date(2030, 6, 30)
    facts.update(application_date=day, graduation_date=day)
    engine = RuleEngine()
    assert engine.run(ruleset, facts).all_passed is shortcut
    assert {c.result for c in evaluate(engine, ruleset, facts).criteria} == {"pass"}
    facts["graduation_date"] = date(2030, 7, 1)  # now application_date < graduation_date
    assert {c.result for c in evaluate(engine, ruleset, facts).criteria} == {"fail"}

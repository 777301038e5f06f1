"""Broken rule files are refused with the file, the place in it and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from miaopi.eligibility.model import RuleFileError
from miaopi.eligibility.ruleset import RuleBook
from tests.conftest import RULES


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    for f in RULES.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "where", "why"),
    [
        ("graduate.yaml", "on_fail: reject", "on_fail: deny", "criteria[0].on_fail", "'deny'"),
        (
            "graduate.yaml",
            "fact: diploma_study_mode",
            "fact: study_mod",
            "fact",
            "unknown fact 'study_mod'",
        ),
        (
            "graduate.yaml",
            "{param: admitted_levels}",
            "{param: admitted_level}",
            "param",
            "parameter 'admitted_level' is not defined",
        ),
        (
            "graduate.yaml",
            "effective_to: 2021-07-31",
            "effective_to: 2021-08-01",
            "effective_to",
            "overlaps version 2021.08",
        ),
        (
            "common.yaml",
            "{fact: criminal_record_count, eq: 0}",
            "{fact: criminal_record_count, eq: none}",
            "criteria[1]",
            "is not a int value",
        ),
        (
            "graduate.yaml",
            "      zh: 全日制学习方式\n",
            "",
            "description",
            "'zh' is a required property",
        ),
        (
            "common.yaml",
            "B: 0.05,",
            "B: 1.5,",
            "parameters.spot_check_rates.B",
            "must be a number from 0 to 1",
        ),
        (
            "common.yaml",
            "  audit_due_days: 90\n",
            "",
            "parameters.audit_due_days",
            "whole number of days",
        ),
        (
            "graduate.yaml",
            "      graduation_window_years: 2\n      living_subsidy_cny: {bachelor: 15000, "
            "master: 25000",
            "      graduation_window_years: 2\n      recheck_until_days: 10\n"
            "      living_subsidy_cny: {bachelor: 15000, master: 25000",
            "parameters.recheck_until_days",
            "ends before recheck_from_days",
        ),
    ],
)
def test_a_broken_rule_file_is_refused_with_file_path_and_reason(
    rules_copy: Path, file: str, old: str, new: str, where: str, why: str
) -> None:
    edit(rules_copy / file, old, new)
    with pytest.raises(RuleFileError) as caught:
        RuleBook.load(rules_copy, "4403")
    message = str(caught.value)
    assert caught.value.file.endswith(file)
    assert where in caught.value.path
    assert why in message


def test_the_fingerprint_changes_with_any_parameter_and_with_the_city(rules_copy: Path) -> None:
    before = RuleBook.load(rules_copy, "4403").rulesets[1].fingerprint
    edit(rules_copy / "graduate.yaml", "{bachelor: 35, master: 40", "{bachelor: 36, master: 40")
    after = RuleBook.load(rules_copy, "4403").rulesets[1].fingerprint
    other_city = RuleBook.load(RULES, "4401").rulesets[1].fingerprint
    assert len({before, after, other_city}) == 3
    assert RuleBook.load(RULES, "4403").rulesets[1].fingerprint == before


def test_the_second_try_schedule_is_outside_every_fingerprint_and_must_ascend(
    rules_copy: Path,
) -> None:
    before = RuleBook.load(rules_copy, "4403")
    assert before.second_try_after_minutes == (5, 30, 120)
    edit(rules_copy / "common.yaml", "[5, 30, 120]", "[10, 60]")
    after = RuleBook.load(rules_copy, "4403")
    assert after.second_try_after_minutes == (10, 60)
    # How the service proceeds is no rule version: every fingerprint stays as it was.
    assert [r.fingerprint for r in after.rulesets] == [r.fingerprint for r in before.rulesets]
    edit(rules_copy / "common.yaml", "[10, 60]", "[60, 10]")
    with pytest.raises(RuleFileError, match="ascending"):
        RuleBook.load(rules_copy, "4403")
    edit(rules_copy / "common.yaml", "[60, 10]", "[5, 30, 120, 240]")
    with pytest.raises(RuleFileError, match="second_try_after_minutes"):
        RuleBook.load(rules_copy, "4403")

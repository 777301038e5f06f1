"""Every rule test case in rules/tests, one pytest item each; and the runner can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from miaopi.eligibility.calendar import CASES_FILE
from miaopi.eligibility.casetests import case_files, load, run_case
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.ruleset import RuleBook
from tests.conftest import RULES

CASES = [(path, case) for path in case_files(RULES) for case in load(path).cases]


def test_there_are_at_least_80_cases_across_the_four_business_types() -> None:
    assert len(CASES) >= 80
    assert {load(p).business_type for p in case_files(RULES)} == {
        "graduate",
        "in_service",
        "overseas_returnee",
        "postdoc",
    }


@pytest.mark.parametrize(("path", "case"), CASES, ids=[f"{p.stem}: {c.name}" for p, c in CASES])
def test_rule_case(rulebook: RuleBook, rule_engine: RuleEngine, path: Path, case) -> None:
    result = run_case(rulebook, rule_engine, load(path), case, path.name)
    assert result.ok, "; ".join(result.problems)


def _cli(rules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIAOPI_RULES_DIR": str(rules)}
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", "rules", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_wrong_expectation_fails_the_run_and_names_the_case(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cases = rules / "tests" / "graduate.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(
        text.replace("fail: [full_time_study]", "fail: [degree_verified]", 1), encoding="utf-8"
    )
    done = _cli(rules, "test")
    assert done.returncode == 1
    assert "FAIL  graduate.yaml: part-time study" in done.stdout
    assert "fail: got ['full_time_study'], expected ['degree_verified']" in done.stdout
    calendar_cases = yaml.safe_load((RULES / CASES_FILE).read_text(encoding="utf-8"))["cases"]
    total = len(CASES) + len(calendar_cases)  # the working-day calendar's cases run too
    assert done.stdout.strip().endswith(f"{total - 1} passed, 1 failed")


def test_validate_refuses_a_broken_rule_file_and_says_where(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "postdoc.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("on_fail: reject", "on_fail: maybe", 1),
        encoding="utf-8",
    )
    done = _cli(rules, "validate")
    assert done.returncode == 1
    assert "postdoc.yaml: criteria[0].on_fail" in done.stderr
    assert _cli(RULES, "validate").returncode == 0

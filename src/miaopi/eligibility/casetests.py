"""Rule test cases: YAML files beside the rules (``rules/tests/*.yaml``), run by one command.

A file names a business type, the facts of an eligible applicant (``defaults``) and cases. A
case changes some facts, may give ``born`` (the police birth date; age follows as of the case's
date, the way decisions compute it) and ``unavailable`` registries (their facts become
unknown), and expects the outcome and exactly which criteria fail or stay unknown; every other
criterion must pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from miaopi.decision.outcome import outcome
from miaopi.domain import BusinessType
from miaopi.eligibility.dates import age_on
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import evaluate
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.facts import FACTS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expect(_Strict):
    outcome: Literal["approved", "rejected", "referred"]
    fail: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    entitlements: dict[str, int] | None = None


class Case(_Strict):
    name: str
    as_of: date
    facts: dict[str, Any] = Field(default_factory=dict)
    born: date | None = None
    unavailable: list[str] = Field(default_factory=list)
    expect: Expect


class CaseFile(_Strict):
    business_type: BusinessType
    defaults: dict[str, Any] = Field(default_factory=dict)
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    ok: bool
    problems: tuple[str, ...] = ()


class CaseFileError(ValueError):
    pass


def case_files(rules_dir: Path) -> list[Path]:
    return sorted((rules_dir / "tests").glob("*.yaml"))


def load(path: Path) -> CaseFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CaseFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise CaseFileError(f"{path}: cannot be read: {exc}") from exc
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise CaseFileError(f"{path}: {where}") from exc


def _typed(name: str, value: Any) -> Any:
    if name not in FACTS:
        raise CaseFileError(f"unknown fact {name!r}")
    if value is None:
        return None
    if FACTS[name].type == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    return value


def run_case(
    book: RuleBook, engine: RuleEngine, file: CaseFile, case: Case, source: str = ""
) -> CaseResult:
    ruleset = book.in_force(file.business_type, case.as_of)
    if ruleset is None:
        return CaseResult(source, case.name, False, (f"no rules in force on {case.as_of}",))
    try:
        facts = dict.fromkeys(ruleset.facts)
        for name, value in {**file.defaults, **case.facts}.items():
            facts[name] = _typed(name, value)
        facts["application_date"] = case.as_of
        if case.born is not None:
            facts["age"] = age_on(case.born, case.as_of)
        for registry in case.unavailable:
            for name in facts:
                if registry in FACTS[name].registries:
                    facts[name] = None
    except CaseFileError as exc:
        return CaseResult(source, case.name, False, (str(exc),))

    judged = evaluate(engine, ruleset, facts)
    results = {c.id: c.result for c in judged.criteria}
    problems = []
    verdict = outcome(judged.criteria)
    if verdict != case.expect.outcome:
        problems.append(f"outcome {verdict}, expected {case.expect.outcome}")
    for kind in ("fail", "unknown"):
        want = set(getattr(case.expect, kind))
        got = {c for c, r in results.items() if r == kind}
        for c in sorted(want - set(results)):
            problems.append(f"no criterion {c!r} in {ruleset.business_type} {ruleset.version}")
        if want & set(results) != got:
            problems.append(f"{kind}: got {sorted(got)}, expected {sorted(want)}")
    if case.expect.entitlements is not None:
        granted = dict(engine.entitled(ruleset, facts)) if verdict == "approved" else {}
        if granted != case.expect.entitlements:
            problems.append(f"entitlements {granted}, expected {case.expect.entitlements}")
    return CaseResult(source, case.name, not problems, tuple(problems))


def load_all(rules_dir: Path) -> list[tuple[Path, CaseFile]]:
    """Every case file under ``rules_dir/tests``, parsed (no durable-rules: any thread)."""
    return [(path, load(path)) for path in case_files(rules_dir)]


def run_cases(
    book: RuleBook, engine: RuleEngine, files: list[tuple[Path, CaseFile]]
) -> list[CaseResult]:
    """Every case against ``book`` (durable-rules: the event loop's thread)."""
    return [
        run_case(book, engine, file, case, path.name) for path, file in files for case in file.cases
    ]


def run_all(
    rules_dir: Path, city_prefix: str, engine: RuleEngine | None = None
) -> list[CaseResult]:
    book = RuleBook.load(rules_dir, city_prefix)
    return run_cases(book, engine or RuleEngine(), load_all(rules_dir))

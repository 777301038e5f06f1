"""Judge every criterion of a ruleset as pass, fail or unknown, with the facts it used.

Three-valued (Kleene) logic. A branch passes when its rule fired; it fails when every field it
reads was known and it did not fire, or when one of its conditions is proven false (all of
that condition's fields known, and it did not hold); otherwise it is unknown. A criterion
passes when one branch passes, is unknown when none passes but one is unknown, and fails
otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from miaopi.domain import CriterionResult, OnFail
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.model import Ruleset


@dataclass(frozen=True, slots=True)
class CriterionOutcome:
    id: str
    result: CriterionResult
    on_fail: OnFail
    description: dict[str, str]
    reference: str
    facts: dict[str, Any]
    registries: tuple[str, ...]

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "id": self.id,
            "result": self.result,
            "on_fail": self.on_fail,
            "description": self.description.get(lang) or self.description["en"],
            "reference": self.reference,
            "facts": self.facts,
            "registries": list(self.registries),
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    criteria: tuple[CriterionOutcome, ...]
    elapsed_ms: float
    cpu_ms: float  # this thread's CPU: the engine's own cost, without waits for the GIL


def _display(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def evaluate(engine: RuleEngine, ruleset: Ruleset, facts: dict[str, Any]) -> Evaluation:
    started, started_cpu = time.perf_counter(), time.thread_time()
    seen = engine.run(ruleset, facts)
    by_criterion: dict[str, list[CriterionResult]] = {}
    # When every criterion holds (the engine's first pass), no branch need be asked about.
    if not seen.all_passed:
        for branch in engine.branches(ruleset):
            if branch.rule in seen.fired:
                result: CriterionResult = "pass"
            elif seen.present.issuperset(branch.fields) or any(
                seen.present.issuperset(c.fields) and c.rule not in seen.true_conditions
                for c in branch.conditions
            ):
                result = "fail"
            else:
                result = "unknown"
            by_criterion.setdefault(branch.criterion, []).append(result)

    shown_facts = {name: _display(value) for name, value in facts.items()}
    outcomes = []
    for criterion in ruleset.criteria:
        results: Sequence[CriterionResult] = (
            ("pass",) if seen.all_passed else by_criterion[criterion.id]
        )
        if "pass" in results:
            verdict: CriterionResult = "pass"
        elif "unknown" in results:
            verdict = "unknown"
        else:
            verdict = "fail"
        shown = {f: shown_facts.get(f) for f in criterion.facts}
        operands = seen.operands.get(criterion.id)
        if operands:
            shown.update({k: _display(v) for k, v in operands.items()})
        outcomes.append(
            CriterionOutcome(
                id=criterion.id,
                result=verdict,
                on_fail=criterion.on_fail,
                description=criterion.description,
                reference=criterion.reference,
                facts=shown,
                registries=criterion.registries,
            )
        )
    return Evaluation(
        tuple(outcomes),
        (time.perf_counter() - started) * 1000,
        (time.thread_time() - started_cpu) * 1000,
    )

"""Decide one application: choose the rules in force, gather the evidence, evaluate, conclude.

Runs on the event loop (durable-rules must not be called from other threads); it touches no
database, so a dry run and a real submission share every step up to recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from miaopi.decision.outcome import outcome
from miaopi.domain import Application, Outcome
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import CriterionOutcome, Evaluation, evaluate
from miaopi.eligibility.model import Ruleset
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.facts import CREDIT_EMPLOYER, FactContext, Query, derive_facts
from miaopi.evidence.gather import Registries, gather
from miaopi.evidence.ports import Evidence


class NoRulesInForce(LookupError):
    def __init__(self, business_type: str, day: date) -> None:
        self.business_type, self.day = business_type, day
        super().__init__(f"no {business_type} rules are in force on {day.isoformat()}")


@dataclass(frozen=True)
class Decision:
    application: Application
    ruleset: Ruleset
    application_date: date
    evidence: tuple[Evidence, ...]
    criteria: tuple[CriterionOutcome, ...]
    outcome: Outcome
    employer: dict[str, Any] | None  # the credit registry's answer about the employer, if ok
    submitted_at: datetime
    decided_at: datetime
    elapsed_ms: float
    rules_ms: float
    rules_cpu_ms: float
    entitlements: tuple[tuple[str, Any], ...] = ()

    def _employer(self, field: str) -> Any:
        return self.employer[field] if self.employer else None

    @property
    def employer_name(self) -> str | None:
        return self._employer("name")

    @property
    def employer_region(self) -> str | None:
        return self._employer("region")

    @property
    def risk_class(self) -> str | None:
        return self._employer("risk_class")

    def decision_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "criteria": [c.to_json() for c in self.criteria],
            "ruleset": self.ruleset.summary(),
            "application_date": self.application_date.isoformat(),
            "entitlements": [{"id": i, "amount_cny": amount} for i, amount in self.entitlements],
        }

    def evidence_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.evidence]


@dataclass(frozen=True)
class Judgement:
    facts: dict[str, Any]
    records: dict[Query, dict[str, Any]]
    evaluation: Evaluation

    @property
    def criteria(self) -> tuple[CriterionOutcome, ...]:
        return self.evaluation.criteria


def judge(
    engine: RuleEngine,
    ruleset: Ruleset,
    application: Application,
    day: date,
    evidence: Iterable[Evidence],
) -> Judgement:
    """Evidence → facts → criterion results: the one path decisions and replays share."""
    records = {
        Query(e.registry, e.query): e.record for e in evidence if e.ok and e.record is not None
    }
    ctx = FactContext(
        application=application,
        application_date=day,
        records=records,
        city_prefix=ruleset.definition["settings"]["city_prefix"],
    )
    facts = derive_facts(set(ruleset.facts), ctx)
    return Judgement(facts, records, evaluate(engine, ruleset, facts))


@dataclass
class Decider:
    rulebook: RuleBook
    engine: RuleEngine
    registries: Registries
    clock: Callable[[], datetime]

    def ruleset_for(self, business_type: str, day: date) -> Ruleset:
        ruleset = self.rulebook.in_force(business_type, day)
        if ruleset is None:
            raise NoRulesInForce(business_type, day)
        return ruleset

    async def decide(self, application: Application, as_of: date | None = None) -> Decision:
        started = time.perf_counter()
        submitted_at = self.clock()
        day = as_of or today_in_shanghai(submitted_at)
        ruleset = self.ruleset_for(application.business_type, day)
        answers = await gather(self.registries, list(ruleset.queries), application)
        judged = judge(self.engine, ruleset, application, day, answers.values())
        verdict = outcome(judged.criteria)
        # Policy §7: what an approval entitles the talent to, found without asking.
        granted = self.engine.entitled(ruleset, judged.facts) if verdict == "approved" else []
        return Decision(
            entitlements=tuple(granted),
            application=application,
            ruleset=ruleset,
            application_date=day,
            evidence=tuple(answers.values()),
            criteria=judged.criteria,
            outcome=verdict,
            employer=judged.records.get(CREDIT_EMPLOYER),
            submitted_at=submitted_at,
            decided_at=self.clock(),
            elapsed_ms=(time.perf_counter() - started) * 1000,
            rules_ms=judged.evaluation.elapsed_ms,
            rules_cpu_ms=judged.evaluation.cpu_ms,
        )

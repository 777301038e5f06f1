"""Replay: re-evaluate a recorded case from its recorded evidence under its recorded rules.

Nothing is asked of the registries again: the question is whether the same evidence under the
same rules still gives the same decision, which is what makes a decision auditable after the
rule files have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from miaopi.adapters.ports import Evidence
from miaopi.decision.outcome import outcome
from miaopi.domain import Application
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import evaluate
from miaopi.eligibility.ruleset import Ruleset, fingerprint
from miaopi.evidence.facts import FactContext, Query, derive_facts


class TamperedRuleset(ValueError):
    """The stored definition no longer hashes to the fingerprint the decision recorded."""


@dataclass(frozen=True)
class Replay:
    identical: bool
    recorded_outcome: str
    replayed_outcome: str
    differences: list[dict[str, Any]]
    ruleset: dict[str, str]


def replay(
    engine: RuleEngine,
    definition: dict[str, Any],
    recorded_fingerprint: str,
    request: dict[str, Any],
    application_date: date,
    evidence: list[dict[str, Any]],
    decision: dict[str, Any],
) -> Replay:
    if fingerprint(definition) != recorded_fingerprint:
        raise TamperedRuleset(recorded_fingerprint)
    ruleset = Ruleset.from_definition(definition)
    application = Application.from_json(request)
    answers = [Evidence.from_json(e) for e in evidence]
    ctx = FactContext(
        application=application,
        application_date=application_date,
        records={
            Query(e.registry, e.query): e.record for e in answers if e.ok and e.record is not None
        },
        city_prefix=definition["settings"]["city_prefix"],
    )
    facts = derive_facts(set(ruleset.facts), ctx)
    judged = evaluate(engine, ruleset, facts)
    replayed = {c.id: c.result for c in judged.criteria}
    recorded = {c["id"]: c["result"] for c in decision["criteria"]}
    differences = [
        {"criterion": cid, "recorded": recorded.get(cid), "replayed": replayed.get(cid)}
        for cid in sorted(set(recorded) | set(replayed))
        if recorded.get(cid) != replayed.get(cid)
    ]
    verdict = outcome(judged.criteria)
    return Replay(
        identical=not differences and verdict == decision["outcome"],
        recorded_outcome=decision["outcome"],
        replayed_outcome=verdict,
        differences=differences,
        ruleset=ruleset.summary(),
    )

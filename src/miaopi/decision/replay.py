"""Replay: re-evaluate a recorded case from its recorded evidence under its recorded rules.

Nothing is asked of the registries again: the question is whether the same evidence under the
same rules still gives the same decision, which is what makes a decision auditable after the
rule files have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from miaopi.decision.outcome import outcome
from miaopi.decision.service import judge
from miaopi.domain import Application
from miaopi.eligibility.build import ruleset_of
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.model import Ruleset, fingerprint
from miaopi.evidence.ports import Evidence


class TamperedRuleset(ValueError):
    """The stored definition no longer hashes to the fingerprint the decision recorded."""


@dataclass(frozen=True)
class Replay:
    identical: bool
    recorded_outcome: str
    replayed_outcome: str
    differences: list[dict[str, Any]]
    ruleset: dict[str, str]


def stored_ruleset(definition: dict[str, Any] | None, recorded_fingerprint: str) -> Ruleset:
    """A case's rule version rebuilt from its stored definition, if that still hashes right."""
    if definition is None or fingerprint(definition) != recorded_fingerprint:
        raise TamperedRuleset(recorded_fingerprint)
    return ruleset_of(definition)


def replay(
    engine: RuleEngine,
    definition: dict[str, Any],
    recorded_fingerprint: str,
    request: dict[str, Any],
    application_date: date,
    evidence: list[dict[str, Any]],
    decision: dict[str, Any],
) -> Replay:
    ruleset = stored_ruleset(definition, recorded_fingerprint)
    judged = judge(
        engine,
        ruleset,
        Application.from_json(request),
        application_date,
        (Evidence.from_json(e) for e in evidence),
    )
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

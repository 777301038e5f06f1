"""Replay a case: its recorded evidence under its recorded rule version, the outcome compared."""

from __future__ import annotations

from typing import Any

from miaopi.decision.replay import Replay, TamperedRuleset, replay
from miaopi.eligibility.engine import RuleEngine
from miaopi.records.clients import Client
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.errors import Conflict
from miaopi.usecases.unit_of_work import UnitOfWork


async def replay_case(
    case_id: str, client: Client, *, uow: UnitOfWork, engine: RuleEngine
) -> tuple[str, Replay, list[dict[str, Any]]]:
    """(case id, the replay of its first decision, its later decisions); on the event loop's
    thread, as durable-rules requires.

    A later decision is replayed too if it was automatic (a second try: the recorded evidence
    with the answers it asked again); a counter review's is shown with the officer's
    resolutions, which are what it rests on beyond the evaluation."""
    row = await case_in_scope(uow, client, case_id)
    definition = await uow.ruleset_definition(row.ruleset_fingerprint)
    if definition is None:
        raise Conflict("ruleset-missing", "the rule version this case used is not stored")
    try:
        result = replay(
            engine,
            definition,
            row.ruleset_fingerprint,
            row.request,
            row.application_date,
            row.evidence,
            row.decision,
        )
        later = await _later(uow, engine, row, definition)
    except TamperedRuleset:
        raise Conflict(
            "ruleset-tampered",
            "the stored rule version no longer matches the fingerprint this case recorded",
        ) from None
    return row.id, result, later


async def _later(
    uow: UnitOfWork, engine: RuleEngine, row: Any, definition: dict[str, Any]
) -> list[dict[str, Any]]:
    if row.outcome != "referred":
        return []
    later: list[dict[str, Any]] = []
    evidence = {(e["registry"], e["query"]): e for e in row.evidence}
    for attempt in await uow.second_tries(row.id):
        if attempt.status != "decided":
            continue
        evidence.update({(e["registry"], e["query"]): e for e in attempt.evidence})
        again = replay(
            engine, definition, row.ruleset_fingerprint, row.request, row.application_date,
            list(evidence.values()), attempt.decision,
        )  # fmt: skip
        later.append({
            "by": "second try", "attempt": attempt.attempt, "identical": again.identical,
            "recorded_outcome": again.recorded_outcome,
            "replayed_outcome": again.replayed_outcome, "differences": again.differences,
        })  # fmt: skip
    review = await uow.review_of_case(row.id)
    if review is not None and review.status == "closed":
        later.append({
            "by": "counter review", "officer": review.officer_name,
            "recorded_outcome": review.outcome, "resolutions": review.resolutions,
        })  # fmt: skip
    return later

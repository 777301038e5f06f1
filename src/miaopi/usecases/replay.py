"""Replay a case: its recorded evidence under its recorded rule version, the outcome compared."""

from __future__ import annotations

from miaopi.decision.replay import Replay, TamperedRuleset, replay
from miaopi.eligibility.engine import RuleEngine
from miaopi.records.clients import Client
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.errors import Conflict
from miaopi.usecases.unit_of_work import UnitOfWork


async def replay_case(
    case_id: str, client: Client, *, uow: UnitOfWork, engine: RuleEngine
) -> tuple[str, Replay]:
    """(case id, the replay); on the event loop's thread, as durable-rules requires."""
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
    except TamperedRuleset:
        raise Conflict(
            "ruleset-tampered",
            "the stored rule version no longer matches the fingerprint this case recorded",
        ) from None
    return row.id, result

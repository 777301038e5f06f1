"""Deciding on behalf of a use case: the rules in force, or a clear reason there are none."""

from __future__ import annotations

from datetime import date

from miaopi.decision.service import Decider, Decision, NoRulesInForce
from miaopi.domain import Application
from miaopi.telemetry.metrics import observe_decision
from miaopi.usecases.errors import InvalidInput


async def decide(
    decider: Decider, application: Application, purpose: str, as_of: date | None = None
) -> Decision:
    """The decision, counted in the metrics under ``purpose`` (``case`` or ``dry_run``)."""
    try:
        decision = await decider.decide(application, as_of)
    except NoRulesInForce as exc:
        loc = ["body", "as_of"] if as_of else ["body", "business_type"]
        raise InvalidInput(loc, str(exc)) from exc
    observe_decision(decision, purpose)
    return decision

"""Dry run: decide without recording a case; the registry queries it made are logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from miaopi.decision.service import Decider, Decision
from miaopi.domain import Application
from miaopi.records.clients import Client
from miaopi.records.paging import new_id
from miaopi.usecases.applications import check_application
from miaopi.usecases.decide import decide
from miaopi.usecases.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Evaluated:
    evaluation_id: str  # names the dry run in the access log, where its queries are
    decision: Decision


async def dry_run(
    application: Application,
    client: Client,
    as_of: date | None,
    *,
    decider: Decider,
    uow: UnitOfWork,
) -> Evaluated:
    checked = check_application(application, client, decider.rulebook)
    decision = await decide(decider, checked, "dry_run", as_of)
    evaluation_id = new_id()
    # No case is recorded, but the queries made about a person are, all the same (§8).
    await uow.log_queries(
        decision.evidence_json(), "dry_run", requested_by=client.id, evaluation_id=evaluation_id,
        id_number=checked.id_number,
    )
    return Evaluated(evaluation_id, decision)

"""The stages after an approval (policy.md §11): the police station registers the household
against the approval number, the finance office records each entitlement's payment.

The registrar types the approval number from the certificate and the ID number from the
identity card: a number that is not the approval's is refused (422), a revoked approval takes
no registration (409), and each stage is recorded once (409 the second time).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from miaopi.records import certificates, stages
from miaopi.records.clients import Client
from miaopi.records.database import Database
from miaopi.records.stages import NotApproved, Stage, StageRecorded
from miaopi.usecases.errors import Conflict, InvalidInput, NotFound


async def _record(database: Database, stage: Stage) -> str:
    try:
        return await database.run(stages.record, stage)
    except NotApproved as exc:
        if exc.status == "revoked":
            raise Conflict("revoked", "the approval was revoked") from None
        raise Conflict("not-approved", "the case is not approved") from None
    except StageRecorded:
        raise Conflict("recorded", "this stage was recorded already") from None


async def register_household(
    database: Database,
    registrar: Client,
    *,
    approval_number: str,
    id_number: str,
    registered_on: date,
    police_station: str,
    now: datetime,
) -> tuple[str, str]:
    """(case id, stage id) of the household registered against the approval."""
    case_id = await database.run(certificates.case_of_number, approval_number)
    if case_id is None:
        raise NotFound("no approval has this number")
    approval = await database.run(certificates.approval, case_id)
    if approval is None:  # pragma: no cover - the number's case exists
        raise NotFound("no approval has this number")
    if approval.case.applicant_id_number.upper() != id_number.upper():
        raise InvalidInput(["body", "id_number"], "not the ID number of this approval")
    stage_id = await _record(database, Stage(
        case_id, "household_registered", "", registered_on,
        {"police_station": police_station, "approval_number": approval_number},
        registrar.id, now,
    ))  # fmt: skip
    return case_id, stage_id


async def record_payment(
    database: Database,
    finance: Client,
    *,
    case_id: str,
    entitlement_id: str,
    amount_cny: int,
    paid_on: date,
    reference: str,
    now: datetime,
) -> str:
    """The stage id of an entitlement's payment."""
    approval = await database.run(certificates.approval, case_id)
    if approval is None:
        raise NotFound("case not found")
    granted = {e["id"]: e for e in approval.entitlements}
    if entitlement_id not in granted:
        raise NotFound("the case's approval grants no such entitlement")
    return await _record(database, Stage(
        case_id, "entitlement_paid", entitlement_id, paid_on,
        {"amount_cny": amount_cny, "reference": reference}, finance.id, now,
    ))  # fmt: skip


def base_stages(row: Any) -> list[dict[str, Any]]:
    """The stages a case's own row tells (decided, revoked); ``stages_of`` adds what others
    recorded."""
    found = [{"stage": "decided", "at": row.decided_at.isoformat()}]
    if row.revoked_at is not None:
        found.append({"stage": "revoked", "at": row.revoked_at.isoformat()})
    return found


async def stages_of(database: Database, row: Any) -> list[dict[str, Any]]:
    """A case's stages with dates: decided, certificate issued, household registered,
    entitlements paid, revoked (the first and last from the case's own row)."""
    base = base_stages(row)
    found: list[dict[str, Any]] = [s for s in base if s["stage"] != "revoked"]
    issued = await database.run(certificates.issued, row.id)
    if issued is not None:
        found.append({"stage": "certificate_issued", "at": issued.issued_at.isoformat()})
    for s in await database.run(stages.of_case, row.id):
        entry = {"stage": s.stage, "at": s.recorded_at.isoformat(), "on": s.on_day.isoformat()}
        if s.subject:
            entry["entitlement_id"] = s.subject
        found.append(entry)
    return found + [s for s in base if s["stage"] == "revoked"]

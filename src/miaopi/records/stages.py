"""The stages after an approval that others record (policy.md §11), each once.

A stage is recorded in one transaction with its ledger entry and its ``case.stage_reached``
event. A household registration ends the person's live approval (policy §5): the register
entry is released with it. A revoked approval takes no stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from miaopi.records import events, ledger, live_approvals
from miaopi.records.certificate_tables import case_stages
from miaopi.records.engines import reading
from miaopi.records.paging import new_id
from miaopi.records.tables import cases
from miaopi.records.writing import writing


class StageRecorded(Exception):
    """The stage was recorded already: each is recorded once."""


class NotApproved(Exception):
    """The case is not approved now; ``status`` says what it is."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(status)


@dataclass(frozen=True, slots=True)
class Stage:
    case_id: str
    stage: str  # household_registered | entitlement_paid
    subject: str  # "" or the entitlement
    on_day: date
    detail: dict[str, Any]
    recorded_by: int
    recorded_at: datetime


def record(engine: Engine, stage: Stage) -> str:
    """Record the stage (see the module); its id."""
    stage_id = new_id()
    try:
        with writing(engine) as conn:
            case = conn.execute(
                select(cases.c.status, cases.c.submitted_by, cases.c.applicant_name)
                .where(cases.c.id == stage.case_id)
                .with_for_update()
            ).one()
            if case.status != "approved":
                raise NotApproved(case.status)
            conn.execute(insert(case_stages).values(
                id=stage_id, case_id=stage.case_id, stage=stage.stage, subject=stage.subject,
                on_day=stage.on_day, detail=stage.detail, recorded_by=stage.recorded_by,
                recorded_at=stage.recorded_at,
            ))  # fmt: skip
            stored = conn.execute(select(case_stages).where(case_stages.c.id == stage_id)).one()
            ledger.append(conn, "stage", stage.case_id, stage_id, ledger.stage_record(stored),
                          stage.recorded_at)  # fmt: skip
            events.case_event(
                conn, "case.stage_reached", case_id=stage.case_id,
                recipient_id=case.submitted_by, applicant_name=case.applicant_name,
                status=case.status, at=stage.recorded_at, stage=stage.stage,
                **({"entitlement_id": stage.subject} if stage.subject else {}),
            )  # fmt: skip
            if stage.stage == "household_registered":
                live_approvals.release(conn, stage.case_id)  # policy §5: no longer live
    except IntegrityError:
        raise StageRecorded(stage.stage) from None
    return stage_id


def of_case(engine: Engine, case_id: str) -> list[Any]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(case_stages)
                .where(case_stages.c.case_id == case_id)
                .order_by(case_stages.c.seq)
            )
        )

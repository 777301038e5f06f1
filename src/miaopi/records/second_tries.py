"""The automatic second tries' records (policy.md §9): scheduled, taken once, decided.

A referral owed only to registries that did not answer is scheduled in the transaction that
refers it (``cases.record``). An instance takes a due attempt with a lease, so that of several
instances one asks the registries; the attempt is decided in one transaction with everything
it implies: the queries it made, the event, the ledger entry, and then either the case's new
status (with an approval's number, live-approval claim and supervision entry), the next
attempt, or the counter review when no attempt is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, insert, or_, select, update

from miaopi.records import events, ledger, live_approvals
from miaopi.records.access_log import log_queries
from miaopi.records.engines import reading
from miaopi.records.paging import new_id
from miaopi.records.prepared import Prepared
from miaopi.records.reviews import enqueue_review
from miaopi.records.tables import cases, second_tries
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event, enqueue_approval
from miaopi.supervision.terms import SupervisionTerms


class AlreadyDecided(Exception):
    """Another instance decided the attempt first (its lease ran out while it worked)."""


# Run inside a decision's pipelined transaction, which takes Prepared statements only.
_SCHEDULE = Prepared(insert(second_tries))


def schedule(
    conn: Connection, *, case_id: str, attempt: int, due_at: datetime, now: datetime
) -> None:
    _SCHEDULE.execute(conn, {
        "id": new_id(), "case_id": case_id, "attempt": attempt, "status": "scheduled",
        "due_at": due_at, "lease_until": None, "outcome": None, "approval_number": None,
        "decision": None, "evidence": None, "decided_at": None, "created_at": now,
    })  # fmt: skip


def _free(now: datetime) -> Any:
    return and_(
        second_tries.c.status == "scheduled",
        second_tries.c.due_at <= now,
        or_(second_tries.c.lease_until.is_(None), second_tries.c.lease_until < now),
    )


def due(engine: Engine, now: datetime, limit: int) -> list[Row[Any]]:
    """Attempts due and not taken, oldest first."""
    with reading(engine) as conn:
        query = (
            select(second_tries.c.id, second_tries.c.case_id, second_tries.c.attempt)
            .where(_free(now))
            .order_by(second_tries.c.due_at)
            .limit(limit)
        )
        return list(conn.execute(query))


def take(engine: Engine, try_id: str, now: datetime, lease: timedelta) -> bool:
    """Take a due attempt for ``lease``; False if another instance has it."""
    with writing(engine) as conn:
        taken = conn.execute(
            update(second_tries)
            .where(second_tries.c.id == try_id, _free(now))
            .values(lease_until=now + lease)
        ).rowcount
    return taken == 1


@dataclass(frozen=True, slots=True)
class Decided:
    """What an attempt decided, and what follows from it."""

    try_id: str
    case_id: str
    attempt: int
    outcome: str
    decision: dict[str, Any]
    evidence: list[dict[str, Any]]  # the answers of the registries asked again
    requested_by: int  # the case's submitter, on whose application the registries are asked
    decided_at: datetime
    today: date
    city_prefix: str
    terms: SupervisionTerms
    risk_class: str | None
    employer_region: str | None
    id_number: str
    live_expired_on: date | None
    next_due_at: datetime | None  # for a referral: the next attempt, if one is left
    review_due: date | None  # for a referral with no attempt left: the counter review's due date


def record(engine: Engine, decided: Decided) -> str | None:
    """Record the attempt and what follows, all or nothing; an approval's number.

    Raises ``AlreadyDecided``, or ``LiveApprovalHeld`` for an approval of a person whose
    other approval is live (nothing is written: decide it again as a referral)."""
    d = decided
    with writing(engine) as conn:
        row = conn.execute(
            select(second_tries.c.status).where(second_tries.c.id == d.try_id).with_for_update()
        ).first()
        if row is None or row.status != "scheduled":
            raise AlreadyDecided(d.try_id)
        number = None
        if d.outcome == "approved":
            if d.live_expired_on is not None:
                live_approvals.claim(
                    conn, id_number=d.id_number, case_id=d.case_id, approved_on=d.today,
                    expired_on=d.live_expired_on,
                )  # fmt: skip
            from miaopi.records.cases import next_approval_number

            number = next_approval_number(conn, d.city_prefix, d.today.year)
        conn.execute(
            update(second_tries)
            .where(second_tries.c.id == d.try_id)
            .values(
                status="decided", outcome=d.outcome, approval_number=number,
                decision=d.decision, evidence=d.evidence, decided_at=d.decided_at,
                lease_until=None,
            )
        )  # fmt: skip
        log_queries(conn, d.evidence, "second_try", d.requested_by, case_id=d.case_id)
        add_event(conn, d.case_id, d.decided_at, "decided", d.outcome, None,
                  {"second_try": d.attempt})  # fmt: skip
        stored = conn.execute(select(second_tries).where(second_tries.c.id == d.try_id)).one()
        ledger.append(conn, "second_try", d.case_id, d.try_id, ledger.second_try_record(stored),
                      d.decided_at)  # fmt: skip
        if d.outcome != "referred":
            conn.execute(
                update(cases)
                .where(cases.c.id == d.case_id, cases.c.status == "referred")
                .values(status=d.outcome)
            )
            events.to_submitter(conn, "case.decided", d.case_id, status=d.outcome,
                                at=d.decided_at, second_try=d.attempt)  # fmt: skip
        if d.outcome == "approved":
            enqueue_approval(
                conn, case_id=d.case_id, approval_date=d.today, now=d.decided_at,
                risk_class=d.risk_class, employer_region=d.employer_region, terms=d.terms,
            )  # fmt: skip
        elif d.outcome == "referred" and d.next_due_at is not None:
            schedule(conn, case_id=d.case_id, attempt=d.attempt + 1, due_at=d.next_due_at,
                     now=d.decided_at)  # fmt: skip
        elif d.outcome == "referred":
            enqueue_review(
                conn, case_id=d.case_id, referred_on=d.today, due_date=d.review_due,
                employer_region=d.employer_region, now=d.decided_at,
            )  # fmt: skip
        return number


def of_case(engine: Engine, case_id: str) -> list[Row[Any]]:
    """The case's second tries, the scheduled one too, in order."""
    with reading(engine) as conn:
        query = (
            select(second_tries)
            .where(second_tries.c.case_id == case_id)
            .order_by(second_tries.c.attempt)
        )
        return list(conn.execute(query))

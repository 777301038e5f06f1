"""The counter review's records (policy.md §9): the queue, an officer's claim, the decision.

A referred case enters the queue in the transaction that refers it (``cases.record``). A
decision is one transaction: the review closed, the case's status, an approval's number, the
event, the ledger entry naming the officer, and for an approval its supervision entry, drawn
for a spot check at rate 1 (every manual approval is checked).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, and_, exists, insert, or_, select, update

from miaopi.records import events, ledger, live_approvals
from miaopi.records.engines import reading
from miaopi.records.paging import new_id, newest_first
from miaopi.records.prepared import Prepared
from miaopi.records.tables import cases, clients, documents, reviews
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event, enqueue_approval
from miaopi.supervision.terms import SupervisionTerms


class ReviewNotFound(LookupError):
    """No such review."""


class ReviewTaken(Exception):
    """Another officer holds the review."""


class ReviewClosed(Exception):
    """The review was decided already; a decision is final."""


class ReviewNotHeld(Exception):
    """The review is not held by this officer (unclaimed, or another's)."""


class Recused(Exception):
    """The officer is of the employer's district and another officer is available."""


_INSERT_REVIEW = Prepared(insert(reviews))  # for every referral (see prepared.py)


def enqueue_review(
    conn: Connection,
    *,
    case_id: str,
    referred_on: date,
    due_date: date | None,
    employer_region: str | None,
    now: datetime,
) -> None:
    """Queue a referred case for the counter, inside the transaction that refers it."""
    _INSERT_REVIEW.execute(
        conn,
        {
            "id": new_id(),
            "case_id": case_id,
            "status": "waiting",
            "employer_region": employer_region,
            "referred_on": referred_on,
            "due_date": due_date,
            "created_at": now,
        },
    )


def _review_query() -> Select[Any]:
    return select(
        reviews,
        cases.c.status.label("case_status"),
        cases.c.business_type,
        cases.c.employer_uscc,
        cases.c.employer_name,
        cases.c.submitted_by,
        clients.c.name.label("officer_name"),
        clients.c.district.label("officer_district"),
    ).select_from(
        reviews.join(cases, cases.c.id == reviews.c.case_id).outerjoin(
            clients, clients.c.id == reviews.c.officer_id
        )
    )


def page(
    engine: Engine,
    limit: int,
    cursor: str | None,
    status: str | None,
    overdue: bool | None,
    today: date,
) -> tuple[list[Row[Any]], str | None]:
    """Reviews, newest first; ``overdue``: only those still open and due before ``today``,
    or only the others."""
    query = _review_query()
    if status is not None:
        query = query.where(reviews.c.status == status)
    late = and_(reviews.c.status != "closed", reviews.c.due_date < today)
    if overdue is not None:
        query = query.where(late if overdue else or_(~late, reviews.c.due_date.is_(None)))
    return newest_first(engine, query, reviews.c.seq, limit, cursor)


def get(engine: Engine, review_id: str) -> Row[Any] | None:
    with reading(engine) as conn:
        return conn.execute(_review_query().where(reviews.c.id == review_id)).first()


def of_case(engine: Engine, case_id: str) -> Row[Any] | None:
    with reading(engine) as conn:
        return conn.execute(_review_query().where(reviews.c.case_id == case_id)).first()


def claim(
    engine: Engine, *, review_id: str, officer_id: int, district: str | None, now: datetime
) -> None:
    """Take a waiting review; the holder claiming again is no change.

    Raises ReviewNotFound, ReviewClosed, ReviewTaken, or Recused when the officer is of the
    employer's district while an officer of another district could take it (as for auditors).
    """
    with writing(engine) as conn:
        row = conn.execute(select(reviews).where(reviews.c.id == review_id)).first()
        if row is None:
            raise ReviewNotFound(review_id)
        if row.status == "closed":
            raise ReviewClosed(review_id)
        if row.officer_id == officer_id:
            return
        if row.officer_id is not None:
            raise ReviewTaken(review_id)
        if district is not None and district == row.employer_region:
            other = select(clients.c.id).where(
                clients.c.role == "officer",
                clients.c.active.is_(True),
                clients.c.district != district,
            )
            if conn.execute(select(exists(other))).scalar():
                raise Recused(review_id)
        taken = conn.execute(
            update(reviews)
            .where(reviews.c.id == review_id, reviews.c.status == "waiting")
            .values(status="in_review", officer_id=officer_id, claimed_at=now)
        ).rowcount
        if taken != 1:
            raise ReviewTaken(review_id)
        add_event(conn, row.case_id, now, "review_claimed", "referred", officer_id,
                  {"review_id": review_id})  # fmt: skip


def _digests(conn: Connection, review_id: str) -> list[dict[str, Any]]:
    """What a decision's ledger entry records of the review's documents: which, for which
    item, and their SHA-256, in the order they came."""
    rows = conn.execute(
        select(documents.c.id, documents.c.item, documents.c.sha256)
        .where(documents.c.review_id == review_id)
        .order_by(documents.c.seq)
    )
    return [{"document_id": r.id, "item": r.item, "sha256": r.sha256} for r in rows]


def decide(
    engine: Engine,
    *,
    review_id: str,
    officer_id: int,
    outcome: str,
    reason: str | None,
    resolutions: list[dict[str, Any]],
    entitlements: list[dict[str, Any]],
    city_prefix: str,
    terms: SupervisionTerms,
    now: datetime,
    today: date,
    live_expired_on: date | None = None,
) -> None:
    """Close the review with the officer's decision, all of it or nothing (see the module).

    An approval claims the person's live approval (``live_approvals.claim``): with another
    one live it raises ``LiveApprovalHeld`` and nothing is written."""
    with writing(engine) as conn:
        row = conn.execute(
            select(reviews).where(reviews.c.id == review_id).with_for_update()
        ).first()
        if row is None:
            raise ReviewNotFound(review_id)
        if row.status == "closed":
            raise ReviewClosed(review_id)
        if row.officer_id != officer_id or row.status == "waiting":
            raise ReviewNotHeld(review_id)
        approved = outcome == "approved"
        number = None
        if approved:
            from miaopi.records.cases import next_approval_number

            if live_expired_on is not None:
                id_number = conn.execute(
                    select(cases.c.applicant_id_number).where(cases.c.id == row.case_id)
                ).scalar_one()
                live_approvals.claim(
                    conn, id_number=id_number, case_id=row.case_id, approved_on=today,
                    expired_on=live_expired_on,
                )  # fmt: skip
            number = next_approval_number(conn, city_prefix, today.year)
        conn.execute(
            update(reviews)
            .where(reviews.c.id == review_id)
            .values(
                status="closed",
                outcome=outcome,
                approval_number=number,
                resolutions=resolutions,
                reason=reason,
                entitlements=entitlements if approved else [],
                documents=_digests(conn, review_id) or None,
                decided_at=now,
            )
        )
        conn.execute(
            update(cases)
            .where(cases.c.id == row.case_id, cases.c.status == "referred")
            .values(status=outcome)
        )
        add_event(conn, row.case_id, now, "reviewed", outcome, officer_id,
                  {"review_id": review_id, "outcome": outcome})  # fmt: skip
        events.to_submitter(conn, "case.reviewed", row.case_id, status=outcome, at=now,
                            review_id=review_id, outcome=outcome)  # fmt: skip
        closed = conn.execute(select(reviews).where(reviews.c.id == review_id)).one()
        ledger.append(conn, "review", row.case_id, review_id, ledger.review_record(closed), now)
        if approved:
            # Every manual approval is drawn for a spot check (policy §9): rate 1.
            enqueue_approval(
                conn,
                case_id=row.case_id,
                approval_date=today,
                now=now,
                risk_class=None,
                employer_region=row.employer_region,
                terms=terms,
                rate="1",
            )

"""What the ledger implies of the rows it does not hash (``ledger_verify.verify``'s second part).

An entry hashes what a decision, a revocation, a closure or a review fixed; some columns beside
them change later by rule (a case's status) or hold what an entry names by hash (a review's
documents). These checks find a change the chain alone would not: a row made around the
ledger, a status no entry gives, a fraud bar that is not its revocation's, a document that no
longer hashes as its review's entry recorded.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, and_, case, exists, or_, select, type_coerce
from sqlalchemy.types import NullType

from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records.approval_numbers import number_of
from miaopi.records.certificate_tables import case_stages
from miaopi.records.sealing import DataKey, SealBroken
from miaopi.records.tables import (
    audit_tasks,
    cases,
    documents,
    fraud_bars,
    ledger,
    reviews,
    second_tries,
)

Problem = tuple[str, str | None, str | None]  # (what, case id, approval number)


def _recorded(kind: str, subject: Any) -> Any:
    entries = select(ledger.c.seq).where(ledger.c.kind == kind, ledger.c.subject_id == subject)
    return entries.exists()


def uncovered(conn: Connection) -> Problem | None:
    """A change the ledger does not record (an entry removed, or a row made around it)."""
    case_row = (cases.c.id, cases.c.approval_number)
    checks = (
        (select(*case_row).where(~_recorded("decision", cases.c.id)), "no decision entry"),
        (
            select(*case_row).where(
                cases.c.status == "revoked", ~_recorded("revocation", cases.c.id)
            ),
            "no revocation entry",
        ),
        (
            select(audit_tasks.c.case_id, cases.c.approval_number)
            .join(cases, cases.c.id == audit_tasks.c.case_id)
            .where(audit_tasks.c.status == "closed", ~_recorded("audit_closure", audit_tasks.c.id)),
            "a closed audit task without its closure entry",
        ),
        (
            select(reviews.c.case_id, reviews.c.approval_number).where(
                reviews.c.status == "closed", ~_recorded("review", reviews.c.id)
            ),
            "a decided review without its ledger entry",
        ),
        (
            select(second_tries.c.case_id, second_tries.c.approval_number).where(
                second_tries.c.status == "decided", ~_recorded("second_try", second_tries.c.id)
            ),
            "a second try decided without its ledger entry",
        ),
        (
            select(case_stages.c.case_id, cases.c.approval_number)
            .join(cases, cases.c.id == case_stages.c.case_id)
            .where(~_recorded("stage", case_stages.c.id)),
            "a stage without its ledger entry",
        ),
    )
    for query, what in checks:
        found = conn.execute(query.limit(1)).first()
        if found is not None:
            return f"case {found[0]} has {what}", found[0], found[1]
    return None


def consistency(conn: Connection, key: DataKey) -> Problem | None:
    """What the chain implies of the columns it does not hash.

    A case's status is its decision's outcome (hashed) until a revocation entry makes it
    ``revoked``; a revocation's fields exist only then. A closed task has its closure entry,
    and a task with one stays closed. Every revoked case has the fraud bar its revocation
    issued: for the applicant (sealed and keyed-hashed), dated the day of the revocation.
    """
    revoked = _recorded("revocation", cases.c.id)
    # A decided review's outcome (hashed in its entry) replaces the automatic one, and so
    # does a second try's that approved or rejected (there is at most one: it ends the tries).
    decided = and_(reviews.c.status == "closed", _recorded("review", reviews.c.id))
    final = and_(
        second_tries.c.case_id == cases.c.id,
        second_tries.c.status == "decided",
        second_tries.c.outcome != "referred",
        _recorded("second_try", second_tries.c.id),
    )
    tried_outcome = select(second_tries.c.outcome).where(final).scalar_subquery()
    current = case(
        (decided, reviews.c.outcome),
        (exists().where(final), tried_outcome),
        else_=cases.c.outcome,
    )
    number = number_of(cases.c.id)
    wrong_status = (
        select(cases.c.id, number.label("approval_number"), cases.c.status)
        .select_from(cases.outerjoin(reviews, reviews.c.case_id == cases.c.id))
        .where(
            or_(
                and_(cases.c.status == "revoked", ~revoked),
                and_(cases.c.status != "revoked", revoked),
                and_(cases.c.status != "revoked", cases.c.status != current),
                and_(
                    cases.c.status != "revoked",
                    or_(cases.c.revoked_at.is_not(None), cases.c.revocation_reason.is_not(None)),
                ),
            )
        )
    )
    found = conn.execute(wrong_status.limit(1)).first()
    if found is not None:
        return (
            f"case {found.id} has status {found.status!r}, which its ledger entries do not give",
            found.id,
            found.approval_number,
        )
    reopened = (
        select(audit_tasks.c.case_id, cases.c.approval_number)
        .join(cases, cases.c.id == audit_tasks.c.case_id)
        .where(audit_tasks.c.status != "closed", _recorded("audit_closure", audit_tasks.c.id))
    )
    task = conn.execute(reopened.limit(1)).first()
    if task is not None:
        return f"case {task[0]} has a closed audit task that is open again", task[0], task[1]
    return _fraud_bars(conn, key) or _documents(conn, key)


def _fraud_bars(conn: Connection, key: DataKey) -> Problem | None:
    def sealed(column: Any) -> Any:  # opened below, so that a broken seal is a finding
        return type_coerce(column, NullType()).label(column.name)

    bars = select(
        cases.c.id,
        cases.c.approval_number,
        cases.c.status,
        sealed(cases.c.applicant_id_number),
        cases.c.revoked_at,
        fraud_bars.c.id.label("bar"),
        sealed(fraud_bars.c.id_number),
        fraud_bars.c.id_hash,
        fraud_bars.c.barred_on,
    ).select_from(
        cases.outerjoin(fraud_bars, fraud_bars.c.case_id == cases.c.id)
    ).where(or_(cases.c.status == "revoked", fraud_bars.c.id.is_not(None)))
    for row in conn.execute(bars).yield_per(1000):
        problem = (f"case {row.id}'s fraud bar", row.id, row.approval_number)
        if row.status != "revoked":
            return f"case {row.id} has a fraud bar but was not revoked", row.id, row.approval_number
        if row.bar is None:
            return f"{problem[0]} is gone", row.id, row.approval_number
        try:
            applicant = key.open(row.applicant_id_number, "cases.applicant_id_number")
            barred = key.open(row.id_number, "fraud_bars.id_number")
        except SealBroken as exc:
            return f"{problem[0]} was changed ({exc})", row.id, row.approval_number
        if barred != applicant or row.id_hash != key.lookup_hash(applicant):
            return f"{problem[0]} is not for its applicant", row.id, row.approval_number
        if row.barred_on != today_in_shanghai(row.revoked_at):
            return f"{problem[0]} is not dated its revocation", row.id, row.approval_number
    return None


def _documents(conn: Connection, key: DataKey) -> Problem | None:
    """Each document a decided review recorded is there and hashes as recorded."""
    recorded = conn.execute(
        select(reviews.c.case_id, reviews.c.approval_number, reviews.c.documents).where(
            reviews.c.status == "closed", reviews.c.documents.is_not(None)
        )
    )
    for review in recorded:
        for named in review.documents or ():  # JSON null: a review without documents
            problem = f"case {review.case_id}'s document {named['document_id']}"
            stored = conn.execute(
                select(type_coerce(documents.c.content, NullType())).where(
                    documents.c.id == named["document_id"]
                )
            ).scalar()
            if stored is None:
                return f"{problem} is gone", review.case_id, review.approval_number
            try:
                content = key.open_bytes(bytes(stored), "documents.content")
            except SealBroken as exc:
                return f"{problem} was changed ({exc})", review.case_id, review.approval_number
            if hashlib.sha256(content).hexdigest() != named["sha256"]:
                return f"{problem} was changed", review.case_id, review.approval_number
    return None

"""Cases: recording a decision in one transaction, reading cases back within a scope."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from miaopi.records import events, ledger, live_approvals, referral_reasons, second_tries
from miaopi.records.access_log import log_queries
from miaopi.records.engines import dialect_insert, reading, reading_one
from miaopi.records.ledger import decision_record
from miaopi.records.paging import new_id, newest_first
from miaopi.records.prepared import Prepared
from miaopi.records.reviews import enqueue_review
from miaopi.records.sealing import JsonText, json_text, key_of
from miaopi.records.tables import (
    approval_counters,
    audit_tasks,
    cases,
    idempotency_keys,
    rulesets,
)
from miaopi.records.writing import after_commit, writing
from miaopi.supervision.queue import add_event, enqueue_approval
from miaopi.supervision.terms import SupervisionTerms


class IdempotencyRace(Exception):
    """Another request with the same idempotency key committed first."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which cases a caller may see."""

    kind: Literal["all", "employer", "submitted_by", "auditor"]
    value: Any = None


@dataclass(frozen=True, slots=True)
class NewCase:
    status: str
    business_type: str
    applicant_name: str
    applicant_id_number: str
    employer_uscc: str
    employer_name: str | None
    submitted_by: int
    application_date: date
    ruleset_fingerprint: str
    ruleset_definition: dict[str, Any]
    ruleset_version: str
    request: dict[str, Any]
    decision: dict[str, Any]
    evidence: list[dict[str, Any]]
    submitted_at: datetime
    decided_at: datetime
    elapsed_ms: float
    # From the employer's registry record; they steer supervision of an approval.
    risk_class: str | None
    employer_region: str | None
    supervision: SupervisionTerms
    # A referral's review is due then (working days, eligibility/calendar.py); None otherwise.
    review_due: date | None = None
    # An approval of the person's on or before this day is no longer live (policy §5).
    live_expired_on: date | None = None
    # A referral owed only to registries that did not answer is decided again then (§9).
    second_try_at: datetime | None = None
    # Policy §11: the applicant's access code, given to the submitter once (None: none made).
    access_code: str | None = None
    # Made once, with the case, not by ``record``: on SQLite ``Database.run`` tries that again while
    # another writer holds the write slot, and these cost more than the rest of an attempt.
    row: dict[str, Any] = field(init=False)  # as inserted (its id too): documents as JSON text
    digest: str = field(init=False)  # for its ledger entry (``ledger.decision_digest``)

    def __post_init__(self) -> None:
        row = {
            "id": new_id(),
            "status": self.status,
            "outcome": self.status,
            "business_type": self.business_type,
            "applicant_name": self.applicant_name,
            "applicant_id_number": self.applicant_id_number,
            "employer_uscc": self.employer_uscc,
            "employer_name": self.employer_name,
            "submitted_by": self.submitted_by,
            "approval_number": None,  # numbered last, in record
            "application_date": self.application_date,
            "ruleset_fingerprint": self.ruleset_fingerprint,
            # Encoded once, for storing and for the ledger, which hashes the text stored.
            **{name: JsonText(json_text(getattr(self, name))) for name in ledger.DOCUMENTS},
            "submitted_at": self.submitted_at,
            "decided_at": self.decided_at,
            "elapsed_ms": self.elapsed_ms,
            "employer_region": self.employer_region,
        }
        object.__setattr__(self, "row", row)
        digest = ledger.decision_digest(decision_record(SimpleNamespace(**row)))
        object.__setattr__(self, "digest", digest)


# The statements of a case, each compiled once per database (see prepared.py).
_INSERT_CASE = Prepared(insert(cases))
_INSERT_IDEMPOTENCY_KEY = Prepared(insert(idempotency_keys))
_NUMBER_CASE = Prepared(
    update(cases)
    .where(cases.c.id == bindparam("case_id"))
    .values(approval_number=bindparam("number"))
)
_STORE_RULESET = Prepared(
    lambda dialect: dialect_insert(dialect)(rulesets).on_conflict_do_nothing(
        index_elements=[rulesets.c.fingerprint]
    )
)
# The counter row stays locked by this transaction until it commits; a rollback takes the
# increment back with it, so numbers stay gap-free.
_NEXT_NUMBER = Prepared(
    lambda dialect: (
        dialect_insert(dialect)(approval_counters)
        .on_conflict_do_update(
            index_elements=[approval_counters.c.year],
            set_={"last": approval_counters.c.last + 1},
        )
        .returning(approval_counters.c.last)
    )
)
# Rule versions each database is known to hold, so the definition is written once, not per case.
_stored_rulesets: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()


def next_approval_number(conn: Connection, city_prefix: str, year: int) -> str:
    """The year's next approval number, gap-free: the counter row stays locked until COMMIT,
    and a rollback takes the increment back."""
    number = _NEXT_NUMBER.scalar(conn, {"year": year, "last": 1})
    return f"{city_prefix}-{year}-{number:06d}"


def record(
    engine: Engine,
    new: NewCase,
    city_prefix: str,
    idempotency: tuple[int, str, str] | None = None,
) -> SimpleNamespace:
    """Store the case, its approval number and its supervision entry, all or nothing.

    Returns the case as stored, with the columns of a row read back (``get``), from the values
    in hand: reading the row back would only open again what was just sealed. The ledger hashes
    these values; ``ledger_verify.verify`` recomputes the hash from the stored row, so a value that
    did not store exactly as given would show as a broken chain.
    """
    case_id = new.row["id"]
    known = _stored_rulesets.setdefault(engine, set())
    try:
        with writing(engine, pipelined=True) as conn:
            if new.ruleset_fingerprint not in known:
                _STORE_RULESET.execute(
                    conn,
                    {
                        "fingerprint": new.ruleset_fingerprint,
                        "business_type": new.business_type,
                        "version": new.ruleset_version,
                        "definition": new.ruleset_definition,
                        "first_used_at": new.decided_at,
                    },
                )
            approved = new.status == "approved"
            data_key = key_of(conn.dialect)
            _INSERT_CASE.execute(conn, {
                **new.row, "applicant_id_hash": data_key.lookup_hash(new.applicant_id_number),
                "access_code_hash": (
                    data_key.access_code_hash(new.access_code) if new.access_code else None
                ),
            })  # fmt: skip
            if approved and new.live_expired_on is not None:
                # One live approval per person: of two at once, the second rolls back here.
                live_approvals.claim(
                    conn,
                    id_number=new.applicant_id_number,
                    case_id=case_id,
                    approved_on=new.application_date,
                    expired_on=new.live_expired_on,
                )
            if idempotency is not None:
                client_id, key, request_hash = idempotency
                _INSERT_IDEMPOTENCY_KEY.execute(
                    conn,
                    {
                        "client_id": client_id,
                        "key": key,
                        "request_hash": request_hash,
                        "case_id": case_id,
                        "created_at": new.decided_at,
                    },
                )
            log_queries(conn, new.evidence, "decision", new.submitted_by, case_id=case_id)
            add_event(conn, case_id, new.decided_at, "decided", new.status, new.submitted_by, {})
            events.decided(
                conn, new.status, case_id=case_id, recipient_id=new.submitted_by,
                applicant_name=new.applicant_name, at=new.decided_at,
            )  # fmt: skip
            if new.status == "referred":
                # Policy §12: the reasons the reports count, with the referral.
                referral_reasons.record(conn, case_id, new.decision)
            if approved:
                # Policy §8: every approval is queued for supervision in the same transaction.
                enqueue_approval(
                    conn,
                    case_id=case_id,
                    approval_date=new.application_date,
                    now=new.decided_at,
                    risk_class=new.risk_class,
                    employer_region=new.employer_region,
                    terms=new.supervision,
                )
            elif new.status == "referred" and new.second_try_at is not None:
                # Policy §9: first a second try, when registries that failed may answer.
                second_tries.schedule(
                    conn, case_id=case_id, attempt=1, due_at=new.second_try_at,
                    now=new.decided_at,
                )  # fmt: skip
            elif new.status == "referred":
                # Policy §9: a referred case enters the counter review in the same transaction.
                enqueue_review(
                    conn,
                    case_id=case_id,
                    referred_on=new.application_date,
                    due_date=new.review_due,
                    employer_region=new.employer_region,
                    now=new.decided_at,
                )
            # As it reads back: documents parsed, timestamps in UTC.
            stored = {**new.row, **{name: getattr(new, name) for name in ledger.DOCUMENTS}}
            stored["submitted_at"] = new.submitted_at.astimezone(UTC)
            stored["decided_at"] = new.decided_at.astimezone(UTC)
            # The access code is answered once, with the case: only its hash is stored.
            row = SimpleNamespace(**stored, revoked_at=None, revocation_reason=None,
                                  access_code=new.access_code)  # fmt: skip
            year = new.application_date.year
            if approved and conn.dialect.name == "postgresql":
                # Number and entry in one statement: no decision waits on its locks for our answer.
                read_number = ledger.number_and_append_decision(
                    conn, case_id, new.digest, new.decided_at, city_prefix, year
                )
                after_commit(conn, lambda: setattr(row, "approval_number", read_number()))
            else:
                if approved:
                    # Numbered last: the counter row stays locked from here until the commit,
                    # and every approval waits for it, so the wait covers only the number, the
                    # ledger entry and the commit, not the whole case.
                    row.approval_number = next_approval_number(conn, city_prefix, year)
                    _NUMBER_CASE.execute(conn, {"case_id": case_id, "number": row.approval_number})
                number = row.approval_number
                ledger.append_decision(conn, case_id, new.digest, number, new.decided_at)
        known.add(new.ruleset_fingerprint)
    except IntegrityError as exc:
        if idempotency is not None and find_idempotent(engine, *idempotency[:2]) is not None:
            raise IdempotencyRace from exc
        raise
    return row


_FIND_IDEMPOTENT = Prepared(  # asked for every submission that gives a key (see prepared.py)
    select(idempotency_keys.c.request_hash, idempotency_keys.c.case_id).where(
        idempotency_keys.c.client_id == bindparam("client_id"),
        idempotency_keys.c.key == bindparam("key"),
    )
)


def find_idempotent(engine: Engine, client_id: int, key: str) -> tuple[str, str] | None:
    """(request hash, case id) already recorded under this client's key, if any."""
    with reading_one(engine) as conn:
        row = _FIND_IDEMPOTENT.first(conn, {"client_id": client_id, "key": key})
    return (row.request_hash, row.case_id) if row else None


def _scoped(scope: Scope):  # type: ignore[no-untyped-def]
    if scope.kind == "all":
        return True
    if scope.kind == "employer":
        return cases.c.employer_uscc == scope.value
    if scope.kind == "submitted_by":
        return cases.c.submitted_by == scope.value
    # an auditor: the cases of their own tasks
    return cases.c.id.in_(
        select(audit_tasks.c.case_id).where(audit_tasks.c.auditor_id == scope.value)
    )


def get(engine: Engine, case_id: str, scope: Scope) -> Row[Any] | None:
    with reading(engine) as conn:
        return conn.execute(
            select(cases).where(and_(cases.c.id == case_id, _scoped(scope)))
        ).first()


def ruleset_definition(engine: Engine, fingerprint: str) -> dict[str, Any] | None:
    with reading(engine) as conn:
        return conn.execute(
            select(rulesets.c.definition).where(rulesets.c.fingerprint == fingerprint)
        ).scalar_one_or_none()


def page(
    engine: Engine,
    scope: Scope,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    business_type: str | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """Newest first; the next cursor is None on the last page."""
    query = select(cases).where(_scoped(scope))
    if status:
        query = query.where(cases.c.status == status)
    if business_type:
        query = query.where(cases.c.business_type == business_type)
    return newest_first(engine, query, cases.c.seq, limit, cursor)

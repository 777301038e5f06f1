"""The tamper-evident decision ledger: a hash chain over decisions and status changes.

Each entry commits to the previous entry's hash and to the SHA-256 of the canonical JSON of
what it records, read back from the stored rows. ``verify`` recomputes both from the rows as
they are now, so editing a stored decision, a revocation or an audit closure — even one byte —
or removing, reordering or inserting entries breaks the chain at a named entry.

The record functions below are part of the stored format: changing what they include would
break every existing entry, so they change only with a migration that re-chains. How a record
is hashed is stored with each entry (``record_format``), so a new way applies to new entries
and the old ones still verify.

No record is ever sent to the database server: records hold personal data in the clear, and a
server writes a slow statement's parameters to its log. The client hashes; on PostgreSQL the
server chains the hash it is given (and, for an approval, the number it draws).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    insert,
    select,
    text,
    update,
)

from miaopi.records.prepared import Prepared
from miaopi.records.tables import UTCDateTime, ledger, ledger_head

GENESIS = "0" * 64


def iso(value: datetime | date | None) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat() if value else None


def decision_record(case: Any) -> dict[str, Any]:
    """What a decision fixed for good (its status may change later; its outcome never)."""
    return {
        "case_id": case.id,
        "business_type": case.business_type,
        "outcome": case.outcome,
        "approval_number": case.approval_number,
        "application_date": iso(case.application_date),
        "ruleset_fingerprint": case.ruleset_fingerprint,
        "applicant": [case.applicant_name, case.applicant_id_number],
        "employer_uscc": case.employer_uscc,
        "submitted_by": case.submitted_by,
        "request": case.request,
        "decision": case.decision,
        "evidence": case.evidence,
        "decided_at": iso(case.decided_at),
    }


def revocation_record(case: Any) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "status": case.status,
        "revoked_at": iso(case.revoked_at),
        "reason": case.revocation_reason,
    }


def review_record(review: Any) -> dict[str, Any]:
    """A counter review's decision: who decided, what, on what, and the approval it gave.

    The documents it rested on are named by their SHA-256, so a changed document shows; a
    review without documents hashes as it did before documents existed."""
    record = {
        "review_id": review.id,
        "case_id": review.case_id,
        "officer_id": review.officer_id,
        "outcome": review.outcome,
        "approval_number": review.approval_number,
        "resolutions": review.resolutions,
        "reason": review.reason,
        "entitlements": review.entitlements,
        "decided_at": iso(review.decided_at),
    }
    if review.documents:
        record["documents"] = review.documents
    return record


def second_try_record(attempt: Any) -> dict[str, Any]:
    """An automatic second try's decision (policy §9): what it asked again and concluded."""
    return {
        "second_try_id": attempt.id,
        "case_id": attempt.case_id,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome,
        "approval_number": attempt.approval_number,
        "decision": attempt.decision,
        "evidence": attempt.evidence,
        "decided_at": iso(attempt.decided_at),
    }


def stage_record(stage: Any) -> dict[str, Any]:
    """A stage after the approval (policy §11): which, on what day, by whom, with what."""
    return {
        "stage_id": stage.id,
        "case_id": stage.case_id,
        "stage": stage.stage,
        "subject": stage.subject,
        "on_day": iso(stage.on_day),
        "detail": stage.detail,
        "recorded_by": stage.recorded_by,
        "recorded_at": iso(stage.recorded_at),
    }


def closure_record(task: Any) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "case_id": task.case_id,
        "kind": task.kind,
        "auditor_id": task.auditor_id,
        "findings": task.findings,
        "outcome": task.outcome,
        "reason": task.reason,
        "closed_at": iso(task.closed_at),
    }


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(data: Any) -> str:
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


# How an entry's record hash is made from its record (the ledger's ``record_format``).
WHOLE = 1  # the SHA-256 of the record's canonical JSON
# The SHA-256 of the canonical JSON of [the SHA-256 of the record's canonical JSON without its
# approval number, the approval number]: every decision since revision 0007. PostgreSQL draws
# an approval's number in the statement that chains it, and finishes the hash from the digest.
NUMBER_APART = 2
# As format 2, but the digest takes a decision's JSON documents (its request, decision and
# evidence: most of the record) as the SHA-256 of the JSON text stored for each, instead of
# encoding them canonically once more: every decision since format 3 came in. The text is the
# one the case stores, encoded once; hashing it pins the stored bytes themselves, and costs
# a fifth of what the canonical encoding did (a decision's record, 61 → 12 µs in process).
DOCUMENTS_APART = 3
FORMATS = (WHOLE, NUMBER_APART, DOCUMENTS_APART)
DOCUMENTS = ("request", "decision", "evidence")


def record_hash(record: dict[str, Any], record_format: int) -> str:
    """``record`` as ``decision_record`` makes it; for format 3, with its documents' stored
    JSON texts in place of the documents."""
    if record_format == WHOLE:
        return _sha256(record)
    if record_format == NUMBER_APART:
        return _numbered(_digest_without_number(record), record["approval_number"])
    if record_format == DOCUMENTS_APART:
        return _numbered(decision_digest(record), record["approval_number"])
    raise ValueError(f"unknown record format {record_format}")


def decision_digest(record: dict[str, Any]) -> str:
    """Format 3's digest of a decision's record, its number left out; each document in the
    record is its stored JSON text."""
    return _sha256({
        name: hashlib.sha256(value.encode()).hexdigest() if name in DOCUMENTS else value
        for name, value in record.items()
        if name != "approval_number"
    })  # fmt: skip


def _digest_without_number(record: dict[str, Any]) -> str:
    return _sha256({k: v for k, v in record.items() if k != "approval_number"})


def _numbered(digest: str, approval_number: str | None) -> str:
    return _sha256([digest, approval_number])


def chained_hash(
    prev: str, seq: int, at: str, kind: str, case_id: str, subject_id: str, record_hash: str
) -> str:
    return _sha256([prev, seq, at, kind, case_id, subject_id, record_hash])


HEAD = select(ledger_head.c.last_seq, ledger_head.c.last_hash).where(ledger_head.c.id == 1)
# Run for every decision (see prepared.py).
_LOCKHEAD = Prepared(HEAD.with_for_update())
_MOVEHEAD = Prepared(
    update(ledger_head)
    .where(ledger_head.c.id == 1)
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)
_INSERT = Prepared(insert(ledger))


def append(
    conn: Connection,
    kind: str,
    case_id: str,
    subject_id: str,
    record: dict[str, Any],
    at: datetime,
    record_format: int = WHOLE,
) -> None:
    """Add an entry, inside the transaction that makes the change it records.

    On PostgreSQL the server chains it (``_CHAINED``); elsewhere the client does.
    """
    _append_hashed(
        conn, kind, case_id, subject_id, record_hash(record, record_format), at, record_format
    )


def _append_hashed(
    conn: Connection,
    kind: str,
    case_id: str,
    subject_id: str,
    hashed: str,
    at: datetime,
    record_format: int,
) -> None:
    if conn.dialect.name == "postgresql":
        params = _entry_params(kind, case_id, subject_id, at)
        _CHAINED[record_format].execute(conn, {**params, "record_hash": hashed})
        return
    head = _LOCKHEAD.first(conn, {})
    if head is None:
        raise LookupError("the ledger has no head row; the migrations make it")
    last_seq, last_hash = head
    seq, stamp = last_seq + 1, iso(at) or ""
    entry_hash = chained_hash(last_hash, seq, stamp, kind, case_id, subject_id, hashed)
    entry = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "case_id": case_id,
        "subject_id": subject_id,
        "record_hash": hashed,
        "prev_hash": last_hash,
        "entry_hash": entry_hash,
    }
    if record_format != WHOLE:  # the column's default; migration 0004 chains before it exists
        entry["record_format"] = record_format
    _INSERT.execute(conn, entry)
    _MOVEHEAD.execute(conn, {"seq": seq, "hash": entry_hash})


def append_decision(
    conn: Connection, case_id: str, digest: str, approval_number: str | None, at: datetime
) -> None:
    """A decision's entry: ``digest`` from ``decision_digest``, made before the transaction
    (on SQLite, every writer of every worker waits while one holds the write slot)."""
    hashed = _numbered(digest, approval_number)
    _append_hashed(conn, "decision", case_id, case_id, hashed, at, DOCUMENTS_APART)


def number_and_append_decision(
    conn: Connection, case_id: str, digest: str, at: datetime, city: str, year: int
) -> Callable[[], str]:
    """PostgreSQL: a decision's entry, made by the statement that also draws the case's approval
    number of ``year`` and sets it on the case; ``digest`` as for ``append_decision``.

    Returns a function that reads the number once the transaction has committed (reading it
    earlier would hold the locks while the answer travels).
    """
    params = _entry_params("decision", case_id, case_id, at)
    params.update(record_digest=digest, year=year, number_prefix=f"{city}-{year}-")
    return _NUMBERED_AND_CHAINED.sent(conn, params)


def _entry_params(kind: str, case_id: str, subject_id: str, at: datetime) -> dict[str, Any]:
    return {
        "at": at,
        "kind": kind,
        "case_id": case_id,
        "subject_id": subject_id,
        # The entry's own fields, between its seq and its record's hash in the canonical JSON.
        "entry_fields": _canonical([iso(at) or "", kind, case_id, subject_id])[1:-1],
    }


# PostgreSQL: the entry made by the server, in the one statement that takes the head's lock.
# Its row stays locked until COMMIT, and every decision of every worker waits for it; made by
# the client, the lock was held while the head's answer travelled back and the client's event
# loop got round to it, and decisions queued on it (pg_stat_activity, scripts/bench). The
# server computes the entry's hash exactly as ``append`` does, from the canonical JSON of its
# fields and the record's hash it is given; ``verify`` checks it.
_CHAIN = """
head AS (
    SELECT last_seq + 1 AS seq, last_hash AS prev FROM ledger_head WHERE id = 1 FOR UPDATE
), hashed AS (
    SELECT seq, prev, {record_hash} AS record_hash FROM head{number_from}
), entry AS (
    SELECT seq, prev, record_hash, encode(sha256(convert_to(
        '["' || prev || '",' || seq || ',' || CAST(:entry_fields AS text) || ',"'
        || record_hash || '"]', 'UTF8'
    )), 'hex') AS entry_hash
    -- Without the head row (the migrations make it) an entry of NULLs, which the ledger's
    -- NOT NULL refuses: the case fails, as append's LookupError fails it, never unchained.
    FROM (SELECT 1) AS one LEFT JOIN hashed ON true
), added AS (
    INSERT INTO ledger (seq, at, kind, case_id, subject_id, record_hash, prev_hash, entry_hash
                        {format_column})
    SELECT seq, :at, :kind, :case_id, :subject_id, record_hash, prev, entry_hash{format_value}
    FROM entry
    RETURNING seq, entry_hash
)
UPDATE ledger_head SET last_seq = added.seq, last_hash = added.entry_hash
FROM added WHERE ledger_head.id = 1
"""
# An approval's number, drawn in the same statement: the counter's row, like the head's, is
# locked until COMMIT (a rollback takes the number back, so numbers stay gap-free). The record's
# hash is finished here with it, as ``record_hash`` makes formats 2 and 3 (a number is ASCII, as
# JSON writes it); the record itself stays with the client.
_NUMBERED = """
number AS (
    INSERT INTO approval_counters (year, last) VALUES (:year, 1)
    ON CONFLICT (year) DO UPDATE SET last = approval_counters.last + 1
    RETURNING CAST(:number_prefix AS text)
        || lpad(last::text, greatest(6, length(last::text)), '0') AS approval_number
), numbered AS (
    UPDATE cases SET approval_number = number.approval_number FROM number
    WHERE cases.id = :case_id RETURNING cases.id
),"""
_NUMBER_APART_HASH = """encode(sha256(convert_to(
        '["' || CAST(:record_digest AS text) || '","' || approval_number || '"]', 'UTF8'
    )), 'hex')"""
_AT = bindparam("at", type_=UTCDateTime())


def _chain(hash_sql: str, record_format: int, numbered: bool = False) -> str:
    # Format 1 leaves the column to its default: migration 0004 chains before the column exists.
    column, value = ("", "")
    if record_format != WHOLE:
        column, value = ", record_format", f", {record_format}"
    return _CHAIN.format(
        record_hash=hash_sql,
        number_from=", number" if numbered else "",
        format_column=column,
        format_value=value,
    )


_CHAINED = {
    record_format: Prepared(
        text("WITH " + _chain("CAST(:record_hash AS text)", record_format)).bindparams(_AT)
    )
    for record_format in FORMATS
}
_NUMBERED_AND_CHAINED = Prepared(
    text(
        "WITH "  # noqa: S608 - fragments of this module's own SQL; every value is bound
        + _NUMBERED
        + _chain(_NUMBER_APART_HASH, DOCUMENTS_APART, numbered=True)
        + "RETURNING (SELECT approval_number FROM number)"
    )
    .bindparams(_AT)
    .columns(approval_number=String)
)

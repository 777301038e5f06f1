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
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import NullType

from miaopi.records.db import reading
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import SealBroken, SealedText
from miaopi.records.tables import UTCDateTime, audit_tasks, cases, ledger, ledger_head

GENESIS = "0" * 64


def _iso(value: datetime | date | None) -> str | None:
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
        "application_date": _iso(case.application_date),
        "ruleset_fingerprint": case.ruleset_fingerprint,
        "applicant": [case.applicant_name, case.applicant_id_number],
        "employer_uscc": case.employer_uscc,
        "submitted_by": case.submitted_by,
        "request": case.request,
        "decision": case.decision,
        "evidence": case.evidence,
        "decided_at": _iso(case.decided_at),
    }


def revocation_record(case: Any) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "status": case.status,
        "revoked_at": _iso(case.revoked_at),
        "reason": case.revocation_reason,
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
        "closed_at": _iso(task.closed_at),
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


def _entry_hash(
    prev: str, seq: int, at: str, kind: str, case_id: str, subject_id: str, record_hash: str
) -> str:
    return _sha256([prev, seq, at, kind, case_id, subject_id, record_hash])


_HEAD = select(ledger_head.c.last_seq, ledger_head.c.last_hash).where(ledger_head.c.id == 1)
# Run for every decision (see prepared.py).
_LOCK_HEAD = Prepared(_HEAD.with_for_update())
_MOVE_HEAD = Prepared(
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
    head = _LOCK_HEAD.first(conn, {})
    if head is None:
        raise LookupError("the ledger has no head row; the migrations make it")
    last_seq, last_hash = head
    seq, stamp = last_seq + 1, _iso(at) or ""
    entry_hash = _entry_hash(last_hash, seq, stamp, kind, case_id, subject_id, hashed)
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
    _MOVE_HEAD.execute(conn, {"seq": seq, "hash": entry_hash})


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
        "entry_fields": _canonical([_iso(at) or "", kind, case_id, subject_id])[1:-1],
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


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken_at: int | None = None  # the first entry that does not hold
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None and not self.reason


# The columns each kind of record is read from: only those, so that a damaged column belongs
# to the entry recording it (a revocation's entry does not open the decision's evidence).
_RECORDS: dict[str, tuple[Table, tuple[str, ...], Callable[[Any], dict[str, Any]]]] = {
    "decision": (cases, (
        "id", "business_type", "outcome", "approval_number", "application_date",
        "ruleset_fingerprint", "applicant_name", "applicant_id_number", "employer_uscc",
        "submitted_by", "request", "decision", "evidence", "decided_at",
    ), decision_record),
    "revocation": (cases, ("id", "status", "revoked_at", "revocation_reason"), revocation_record),
    "audit_closure": (audit_tasks, (
        "id", "case_id", "kind", "auditor_id", "findings", "outcome", "reason", "closed_at",
    ), closure_record),
}  # fmt: skip


def _is_document(kind: str, name: str) -> bool:
    """A decision's JSON document: read as the text stored (format 3 hashes that text)."""
    return kind == "decision" and name in DOCUMENTS


def _entries_with_records() -> Select[Any]:
    """Every entry with the columns of what it records, in one query in the chain's order.

    A query per entry made verification a round trip per entry on PostgreSQL. The record's
    columns come as stored (``NullType``: nothing opened or parsed as the rows are fetched, a
    thousand at a time); ``_record`` reads them entry by entry, so a value that does not open
    is reported at its own entry. A JSON column comes as its text (PostgreSQL keeps a ``json``
    value's text as it was given; its driver would parse it).
    """

    def stored(kind: str, column: Any) -> Any:
        value = cast(column, Text) if _is_document(kind, column.name) else column
        return type_coerce(case((ledger.c.kind == kind, value)), NullType())

    raw = [
        stored(kind, table.c[name]).label(f"{kind}__{name}")
        for kind, (table, names, _) in _RECORDS.items()
        for name in names
    ]
    joined = ledger.outerjoin(
        cases, and_(ledger.c.kind.in_(("decision", "revocation")), cases.c.id == ledger.c.case_id)
    ).outerjoin(
        audit_tasks, and_(ledger.c.kind == "audit_closure", audit_tasks.c.id == ledger.c.subject_id)
    )
    return select(ledger, *raw).select_from(joined).order_by(ledger.c.seq)


def _readers(dialect: Dialect) -> dict[str, list[tuple[str, str, Callable[[Any], Any] | None]]]:
    """Per kind: (column, label, how the column's own type reads a stored value); a decision's
    documents are read as their JSON text, opened if sealed."""

    def reader(kind: str, name: str, kind_of_column: Any) -> Callable[[Any], Any] | None:
        if not _is_document(kind, name):
            return kind_of_column.dialect_impl(dialect).result_processor(dialect, None)
        if isinstance(kind_of_column, SealedText):
            return partial(kind_of_column.opened, dialect=dialect)
        return None

    return {
        kind: [(name, f"{kind}__{name}", reader(kind, name, table.c[name].type)) for name in names]
        for kind, (table, names, _) in _RECORDS.items()
    }


def _parsed(record: dict[str, Any]) -> dict[str, Any]:
    """A decision's record with its documents parsed, as formats 1 and 2 hash it."""
    return {**record, **{name: json.loads(record[name]) for name in DOCUMENTS}}


def _record(
    entry: Row[Any], readers: dict[str, list[tuple[str, str, Callable[[Any], Any] | None]]]
) -> dict[str, Any] | None:
    """What the entry records, from the rows as they are now; None if its row is gone."""
    stored = entry._mapping
    values = {
        name: stored[label] if read is None or stored[label] is None else read(stored[label])
        for name, label, read in readers[entry.kind]
    }
    if values["id"] is None:
        return None
    return _RECORDS[entry.kind][2](SimpleNamespace(**values))


def verify(engine: Engine) -> Verdict:
    """Walk the whole chain against the rows as they are now; name the first broken entry."""
    prev, count = GENESIS, 0
    readers = _readers(engine.dialect)
    with reading(engine) as conn:
        for entry in conn.execute(_entries_with_records()).yield_per(1000):
            count += 1
            if entry.seq != count:
                return Verdict(count, entry.seq, f"entry {count} is missing")
            if entry.prev_hash != prev:
                return Verdict(count, entry.seq, "does not follow the entry before it")
            if entry.kind not in _RECORDS:
                return Verdict(count, entry.seq, f"its kind {entry.kind!r} is unknown")
            try:
                record = _record(entry, readers)
            except SealBroken as exc:  # a sealed column edited in place no longer opens
                return Verdict(count, entry.seq, f"its {entry.kind} record was changed ({exc})")
            if record is None:
                return Verdict(count, entry.seq, f"its {entry.kind} record is gone")
            if entry.record_format not in FORMATS:
                return Verdict(
                    count, entry.seq, f"its record format {entry.record_format} is unknown"
                )
            if entry.kind != "decision" and entry.record_format != WHOLE:  # a decision's formats
                return Verdict(count, entry.seq, f"its {entry.kind} record was changed")
            if entry.kind == "decision" and entry.record_format != DOCUMENTS_APART:
                try:
                    record = _parsed(record)
                except ValueError:
                    return Verdict(count, entry.seq, "its decision record was changed (not JSON)")
            if record_hash(record, entry.record_format) != entry.record_hash:
                return Verdict(count, entry.seq, f"its {entry.kind} record was changed")
            expected = _entry_hash(
                prev, entry.seq, _iso(entry.at) or "", entry.kind, entry.case_id,
                entry.subject_id, entry.record_hash,
            )  # fmt: skip
            if entry.entry_hash != expected:
                return Verdict(count, entry.seq, "the entry itself was changed")
            prev = entry.entry_hash
        last_seq, last_hash = conn.execute(_HEAD).one()
        if (last_seq, last_hash) != (count, prev):
            return Verdict(count, None, "the chain was cut: its recorded end is not its last entry")
        missing = _uncovered(conn)
        if missing:
            return Verdict(count, None, missing)
    return Verdict(count)


def _uncovered(conn: Connection) -> str:
    """A change the ledger does not record (an entry removed, or a row made around it)."""

    def lacking(kind: str, subject: Any) -> Any:
        return ~(
            select(ledger.c.seq)
            .where(ledger.c.kind == kind, ledger.c.subject_id == subject)
            .exists()
        )

    checks = (
        (select(cases.c.id).where(lacking("decision", cases.c.id)), "decision"),
        (
            select(cases.c.id).where(
                cases.c.status == "revoked", lacking("revocation", cases.c.id)
            ),
            "revocation",
        ),
        (
            select(audit_tasks.c.id).where(
                audit_tasks.c.status == "closed", lacking("audit_closure", audit_tasks.c.id)
            ),
            "audit_closure",
        ),
    )
    for query, kind in checks:
        found = conn.execute(query.limit(1)).scalar_one_or_none()
        if found is not None:
            return f"{found} has no {kind} entry"
    return ""

"""Verifying the ledger: recompute every entry from the rows as they are now (``ledger.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    select,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import NullType

from miaopi.records.certificate_tables import case_stages
from miaopi.records.engines import reading
from miaopi.records.ledger import (
    DOCUMENTS,
    DOCUMENTS_APART,
    FORMATS,
    GENESIS,
    HEAD,
    WHOLE,
    chained_hash,
    closure_record,
    decision_record,
    iso,
    record_hash,
    review_record,
    revocation_record,
    second_try_record,
    stage_record,
)
from miaopi.records.ledger_consistency import consistency, uncovered
from miaopi.records.sealing import SealBroken, SealedText, key_of
from miaopi.records.tables import audit_tasks, cases, ledger, reviews, second_tries


@dataclass(frozen=True)
class Verdict:
    entries: int
    broken_at: int | None = None  # the first entry that does not hold
    reason: str = ""
    case_id: str | None = None  # the case the problem is about, when there is one
    approval_number: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None and not self.reason

    def where(self) -> str:
        """The entry and the case, as an operator looks them up."""
        parts = [f"entry {self.broken_at}" if self.broken_at else "after the last entry"]
        if self.case_id:
            number = f", approval {self.approval_number}" if self.approval_number else ""
            parts.append(f"case {self.case_id}{number}")
        return ", ".join(parts)


# The columns each kind of record is read from: only those, so that a damaged column belongs
# to the entry recording it (a revocation's entry does not open the decision's evidence).
_RECORDS: dict[str, tuple[Table, tuple[str, ...], Callable[[Any], dict[str, Any]]]] = {
    "decision": (cases, (
        "id", "business_type", "outcome", "approval_number", "application_date",
        "ruleset_fingerprint", "applicant_name", "applicant_id_number", "employer_uscc",
        "submitted_by", "request", "decision", "evidence", "decided_at", "employer_name",
    ), decision_record),
    "revocation": (cases, ("id", "status", "revoked_at", "revocation_reason"), revocation_record),
    "audit_closure": (audit_tasks, (
        "id", "case_id", "kind", "auditor_id", "findings", "outcome", "reason", "closed_at",
    ), closure_record),
    "review": (reviews, (
        "id", "case_id", "officer_id", "outcome", "approval_number", "resolutions", "reason",
        "entitlements", "decided_at", "documents",
    ), review_record),
    "stage": (case_stages, (
        "id", "case_id", "stage", "subject", "on_day", "detail", "recorded_by", "recorded_at",
    ), stage_record),
    "second_try": (second_tries, (
        "id", "case_id", "attempt", "outcome", "approval_number", "decision", "evidence",
        "decided_at",
    ), second_try_record),
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
    ).outerjoin(
        reviews, and_(ledger.c.kind == "review", reviews.c.id == ledger.c.subject_id)
    ).outerjoin(
        second_tries,
        and_(ledger.c.kind == "second_try", second_tries.c.id == ledger.c.subject_id),
    ).outerjoin(
        case_stages, and_(ledger.c.kind == "stage", case_stages.c.id == ledger.c.subject_id)
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
) -> tuple[dict[str, Any], SimpleNamespace] | None:
    """What the entry records, from the rows as they are now, and the columns it was made
    from; None if its row is gone."""
    stored = entry._mapping
    values = {
        name: stored[label] if read is None or stored[label] is None else read(stored[label])
        for name, label, read in readers[entry.kind]
    }
    if values["id"] is None:
        return None
    row = SimpleNamespace(**values)
    return _RECORDS[entry.kind][2](row), row


def _employer_name(evidence: Any) -> str | None:
    """The employer's name as the credit registry answered it (what the case shows)."""
    items = json.loads(evidence) if isinstance(evidence, str) else evidence
    for e in items:
        if (e.get("registry"), e.get("query"), e.get("status")) == ("credit", "employer", "ok"):
            return (e.get("record") or {}).get("name")
    return None


def _approval_number(entry: Row[Any]) -> str | None:
    number = entry._mapping.get("decision__approval_number")
    return number if isinstance(number, str) else None


def verify(engine: Engine) -> Verdict:
    """Walk the whole chain against the rows as they are now; name the first broken entry,
    and its case. Then check what the chain implies of the rows it does not hash: each
    case's status, its revocation's fields and fraud bar, and each closed task's status."""
    with reading(engine) as conn:
        verdict = _walk(conn, engine.dialect)
        if not verdict.intact:
            return verdict
        problem = uncovered(conn) or consistency(conn, key_of(engine.dialect))
        if problem is not None:
            reason, case_id, number = problem
            return Verdict(verdict.entries, None, reason, case_id, number)
    return verdict


def _walk(conn: Connection, dialect: Dialect) -> Verdict:
    prev, count = GENESIS, 0
    readers = _readers(dialect)
    for entry in conn.execute(_entries_with_records()).yield_per(1000):
        verdict = _check_entry(entry, count + 1, prev, readers)
        if verdict is not None:
            return verdict
        count += 1
        prev = entry.entry_hash
    last_seq, last_hash = conn.execute(HEAD).one()
    if (last_seq, last_hash) != (count, prev):
        return Verdict(count, None, "the chain was cut: its recorded end is not its last entry")
    return Verdict(count)


def _check_entry(
    entry: Row[Any],
    count: int,
    prev: str,
    readers: dict[str, list[tuple[str, str, Callable[[Any], Any] | None]]],
) -> Verdict | None:
    """None if the entry holds; else the verdict naming it and its case."""

    def broken(reason: str) -> Verdict:
        return Verdict(count, entry.seq, reason, entry.case_id, _approval_number(entry))

    if entry.seq != count:
        return broken(f"entry {count} is missing")
    if entry.prev_hash != prev:
        return broken("does not follow the entry before it")
    if entry.kind not in _RECORDS:
        return broken(f"its kind {entry.kind!r} is unknown")
    try:
        made = _record(entry, readers)
    except SealBroken as exc:  # a sealed column edited in place no longer opens
        return broken(f"its {entry.kind} record was changed ({exc})")
    if made is None:
        return broken(f"its {entry.kind} record is gone")
    record, row = made
    if entry.record_format not in FORMATS:
        return broken(f"its record format {entry.record_format} is unknown")
    if entry.kind != "decision" and entry.record_format != WHOLE:  # a decision's formats
        return broken(f"its {entry.kind} record was changed")
    if entry.kind == "decision" and entry.record_format != DOCUMENTS_APART:
        try:
            record = _parsed(record)
        except ValueError:
            return broken("its decision record was changed (not JSON)")
    if record_hash(record, entry.record_format) != entry.record_hash:
        return broken(f"its {entry.kind} record was changed")
    expected = chained_hash(
        prev, entry.seq, iso(entry.at) or "", entry.kind, entry.case_id,
        entry.subject_id, entry.record_hash,
    )  # fmt: skip
    if entry.entry_hash != expected:
        return broken("the entry itself was changed")
    if entry.kind == "decision" and row.employer_name != _employer_name(record["evidence"]):
        return broken("the employer's name is not the one its evidence gives")
    return None

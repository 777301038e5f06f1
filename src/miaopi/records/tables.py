"""The schema, as SQLAlchemy Core tables. Migrations make it; a test keeps them in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

from miaopi.records.sealing import SealedBytes, SealedJSON, SealedText

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_prefix", String(16), nullable=False, unique=True),
    Column("key_salt", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("uscc", String(18)),
    Column("district", String(6)),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

rulesets = Table(
    "rulesets",
    metadata,
    Column("fingerprint", String(80), primary_key=True),
    Column("business_type", String(32), nullable=False),
    Column("version", String(16), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("first_used_at", UTCDateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("business_type", String(32), nullable=False),
    # Personal data is sealed (records/sealing.py); nothing selects or filters on it in SQL.
    Column("applicant_name", SealedText("cases.applicant_name"), nullable=False),
    Column("applicant_id_number", SealedText("cases.applicant_id_number"), nullable=False),
    Column("employer_uscc", String(18), nullable=False),
    Column("employer_name", Text),
    Column("submitted_by", Integer, ForeignKey("clients.id"), nullable=False),
    Column("approval_number", String(32), unique=True),
    Column("application_date", Date, nullable=False),
    Column("ruleset_fingerprint", String(80), ForeignKey("rulesets.fingerprint"), nullable=False),
    Column("request", SealedJSON("cases.request"), nullable=False),
    Column("decision", JSON, nullable=False),
    Column("evidence", SealedJSON("cases.evidence"), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("elapsed_ms", Float, nullable=False),
    # Set once, by a revocation; the decision above is never rewritten (case_events keeps all).
    Column("revoked_at", UTCDateTime),
    Column("revocation_reason", SealedText("cases.revocation_reason")),
    # Policy §11, the applicant's own view: the keyed hash of the access code handed to the
    # submitter once (the code itself is nowhere), and of the ID number, which finds the dry
    # runs made about the person without opening anything sealed (sealing.lookup_hash).
    Column("access_code_hash", String(64)),
    Column("applicant_id_hash", String(64)),
    # The employer's district as the credit registry gave it: the reports count by district.
    Column("employer_region", String(6)),
    Index(None, "employer_uscc", "seq"),
    # The reports (policy §12) read a year of cases from this index alone, not the rows with
    # their sealed documents; the public notice finds the approvals of the last days by it.
    Index(
        "ix_cases_report", "application_date", "business_type", "employer_region",
        "employer_uscc", "outcome", "status", "elapsed_ms", "id", "submitted_at",
    ),
    # Revoked cases are few: the index holds only them, so a decision does not write to it.
    Index(
        "ix_cases_revoked", "revoked_at",
        sqlite_where=text("revoked_at IS NOT NULL"),
        postgresql_where=text("revoked_at IS NOT NULL"),
    ),
    Index(None, "submitted_by", "seq"),
    Index(None, "status", "seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", Integer, ForeignKey("clients.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

approval_counters = Table(
    "approval_counters",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)

# Every approval, queued for the periodic re-check: state ``queued`` until a re-check completes.
supervision_queue = Table(
    "supervision_queue",
    metadata,
    Column("case_id", String(32), ForeignKey("cases.id"), primary_key=True),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("rechecked_at", UTCDateTime),
    Column("recheck_result", String(16)),
    # A re-check runner's claim (recheck.py): others skip the case until the lease runs out.
    Column("claimed_by", String(32)),
    Column("claimed_until", UTCDateTime),
    Index(None, "state", "queued_at"),
)

# One secret seed per calendar month (Asia/Shanghai), published once the month has ended.
audit_periods = Table(
    "audit_periods",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("seed", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The spot-check draw of every approval: the published record an outsider recomputes.
spot_check_draws = Table(
    "spot_check_draws",
    metadata,
    Column("case_id", String(32), ForeignKey("cases.id"), primary_key=True),
    Column("period", String(7), ForeignKey("audit_periods.period"), nullable=False),
    Column("risk_class", String(1)),
    Column("rate", String(24), nullable=False),
    Column("selected", Boolean, nullable=False),
    Index(None, "period", "case_id"),
)

OPEN_OR_NOT_OBJECTION = text("kind <> 'objection' OR status <> 'closed'")
audit_tasks = Table(
    "audit_tasks",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # spot_check | recheck | objection
    Column("status", String(16), nullable=False),  # unassigned | open | closed
    Column("auditor_id", Integer, ForeignKey("clients.id")),
    Column("employer_region", String(6)),  # the district its auditor must not come from
    Column("period", String(7)),
    Column("due_date", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("assigned_at", UTCDateTime),
    Column("discrepancy", JSON),
    # An auditor's words may name the applicant: sealed like the case.
    Column("findings", SealedJSON("audit_tasks.findings")),
    Column("outcome", String(16)),
    Column("reason", SealedText("audit_tasks.reason")),
    Column("closed_at", UTCDateTime),
    # One task of each kind per case: a second re-check run cannot open a second task. An
    # objection is the exception once its task is closed: a later one opens a task of its own
    # (the closed task and its ledger entry stay as they were).
    Index("uq_audit_tasks_case_id_kind", "case_id", "kind", unique=True,
          sqlite_where=OPEN_OR_NOT_OBJECTION, postgresql_where=OPEN_OR_NOT_OBJECTION),
    Index(None, "auditor_id", "seq"),
    Index(None, "status", "seq"),
)

# The counter review of a referred case (policy.md §9): queued in the transaction that refers
# it, taken by one officer, decided once. A manual approval's number is kept here: the case's
# own approval_number is its automatic decision's, which the ledger hashed as none.
reviews = Table(
    "reviews",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False, unique=True),
    # waiting | in_review | awaiting_documents | closed
    Column("status", String(24), nullable=False),
    Column("employer_region", String(6)),  # the district an officer is recused from
    Column("referred_on", Date, nullable=False),
    # None while the clock is stopped for documents, or if the calendar did not reach it (logged)
    Column("due_date", Date),
    Column("officer_id", Integer, ForeignKey("clients.id")),
    Column("claimed_at", UTCDateTime),
    Column("outcome", String(16)),
    Column("approval_number", String(32), unique=True),
    # An officer's notes and reason may name the applicant: sealed like the case.
    Column("resolutions", SealedJSON("reviews.resolutions")),
    Column("reason", SealedText("reviews.reason")),
    Column("entitlements", JSON),
    Column("decided_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # The one-time notice (一次性告知): its items may name the applicant's papers, so sealed.
    Column("document_request", SealedJSON("reviews.document_request")),
    Column("documents_requested_at", UTCDateTime),
    Column("days_left", Integer),  # working days left on the clock when it stopped
    # The documents the decision rested on, by hash, as its ledger entry records them.
    Column("documents", JSON),
    Index(None, "status", "seq"),
    Index(None, "officer_id", "seq"),
)

# The automatic second tries of a referral owed only to registries that did not answer
# (policy.md §9): one row an attempt, ``scheduled`` until an instance takes it (``lease_until``:
# until then no other instance does) and then ``decided``, with what it decided and, for an
# approval, its number. The case's first decision is never rewritten.
second_tries = Table(
    "second_tries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),  # scheduled | decided
    Column("due_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("outcome", String(16)),
    Column("approval_number", String(32), unique=True),
    Column("decision", JSON),  # as a case's: criteria, ruleset, entitlements
    Column("evidence", SealedJSON("second_tries.evidence")),  # the answers asked again
    Column("decided_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "attempt"),
    Index(None, "status", "due_at"),
)

# Documents the submitter uploads for a review's one-time notice, sealed like personal data.
documents = Table(
    "documents",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("review_id", String(32), ForeignKey("reviews.id"), nullable=False),
    Column("item", SmallInteger, nullable=False),  # the request's item it answers
    Column("media_type", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", SealedBytes("documents.content"), nullable=False),
    Column("uploaded_by", Integer, ForeignKey("clients.id"), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    Index(None, "case_id", "seq"),
)

# One live approval per person (policy.md §5): the person's latest approval, by the keyed hash
# of the ID number. The row is claimed in the transaction that approves, and a live one (less
# than the rules' years old) is never replaced: of two approvals for one person at the same
# moment, one commits and the other is referred. A revocation releases it.
live_approvals = Table(
    "live_approvals",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    # Neither indexed nor a foreign key: it is written with every approval, in the transaction
    # that records its case, and searched only by a revocation.
    Column("case_id", String(32), nullable=False),
    Column("approved_on", Date, nullable=False),
)

# Fraud bars this city issued by revoking an approval (policy.md §8).
fraud_bars = Table(
    "fraud_bars",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("id_number", SealedText("fraud_bars.id_number"), nullable=False),
    # The keyed hash of the ID number: how the register is searched (sealing.lookup_hash).
    Column("id_hash", String(64), nullable=False),
    Column("barred_on", Date, nullable=False),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "id_hash"),
)

# What happened to a case, in order: decided, revoked, audit closed. Nothing is overwritten.
case_events = Table(
    "case_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # the case's status after the event
    Column("actor_id", Integer, ForeignKey("clients.id")),
    Column("detail", SealedJSON("case_events.detail"), nullable=False),
    Index(None, "case_id", "seq"),
)

# Every registry query, with why it was made (policy.md §8, last point): who asked what about
# whom can be shown. ``case_id`` for decisions and re-checks, ``evaluation_id`` for dry runs.
registry_queries = Table(
    "registry_queries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), ForeignKey("cases.id")),
    Column("evaluation_id", String(32)),
    Column("purpose", String(16), nullable=False),  # decision | second_try | dry_run | recheck
    Column("requested_by", Integer, ForeignKey("clients.id")),  # None: miaopi itself
    Column("registry", String(32), nullable=False),
    Column("query", String(32), nullable=False),
    Column("queried_at", UTCDateTime, nullable=False),
    Column("elapsed_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    # A dry run's: the keyed hash of the ID number asked about (sealing.lookup_hash), by which
    # the applicant's view finds the dry runs about them. A case's queries are found by their
    # case, whose applicant_id_hash says the same.
    Column("subject_hash", String(64)),
    Index(None, "case_id", "seq"),
    Index(None, "evaluation_id"),
    Index(
        "ix_registry_queries_dry_run_subject", "subject_hash", "seq",
        sqlite_where=text("purpose = 'dry_run'"), postgresql_where=text("purpose = 'dry_run'"),
    ),
)

# The tamper-evident ledger (a hash chain): every decision, revocation and audit closure, each
# entry committing to the previous entry's hash and to the canonical JSON of what it records.
ledger = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(24), nullable=False),  # decision | revocation | audit_closure
    Column("case_id", String(32), nullable=False),
    Column("subject_id", String(32), nullable=False),  # the case, or the audit task
    Column("record_hash", String(64), nullable=False),
    # How record_hash was made from the record (ledger.py): 1, 2 or 3.
    Column("record_format", SmallInteger, nullable=False, server_default="1"),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
)

# One row: the chain's end. Updating it in the appending transaction serializes appends.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# Events and webhook deliveries are defined beside, on the same metadata.
from miaopi.records import batch_tables as _batch_tables  # noqa: E402, F401
from miaopi.records import certificate_tables as _certificate_tables  # noqa: E402, F401
from miaopi.records import console_tables as _console_tables  # noqa: E402, F401
from miaopi.records import event_tables as _event_tables  # noqa: E402, F401
from miaopi.records import notice_tables as _notice_tables  # noqa: E402, F401
from miaopi.records import report_tables as _report_tables  # noqa: E402, F401

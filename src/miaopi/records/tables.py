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
    String,
    Table,
    Text,
    TypeDecorator,
)

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
    Column("applicant_name", Text, nullable=False),
    Column("applicant_id_number", Text, nullable=False),
    Column("employer_uscc", String(18), nullable=False),
    Column("employer_name", Text),
    Column("submitted_by", Integer, ForeignKey("clients.id"), nullable=False),
    Column("approval_number", String(32), unique=True),
    Column("application_date", Date, nullable=False),
    Column("ruleset_fingerprint", String(80), ForeignKey("rulesets.fingerprint"), nullable=False),
    Column("request", JSON, nullable=False),
    Column("decision", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("elapsed_ms", Float, nullable=False),
    Index(None, "employer_uscc", "seq"),
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

supervision_queue = Table(
    "supervision_queue",
    metadata,
    Column("case_id", String(32), ForeignKey("cases.id"), primary_key=True),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
)

"""The schema of what follows an approval (policy.md §11), beside ``tables.py``: the signing
keys, the certificates they signed, and the stages recorded after the approval."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from miaopi.records.tables import UTCDateTime, metadata

# Every key that ever signed, by its id: its public half stays published after a rotation.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),  # None: the key in use
)

# An approval's certificate, signed once (when first asked for) and given the same ever after.
certificates = Table(
    "certificates",
    metadata,
    Column("case_id", String(32), ForeignKey("cases.id"), primary_key=True),
    Column("approval_number", String(32), nullable=False, unique=True),
    Column("kid", String(64), ForeignKey("signing_keys.kid"), nullable=False),
    Column("token", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
)

# The stages after an approval that others record (policy.md §11): the household registered by
# the police station, each entitlement paid by the finance office. Each is recorded once.
case_stages = Table(
    "case_stages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("stage", String(32), nullable=False),  # household_registered | entitlement_paid
    Column("subject", String(64), nullable=False),  # "" or the entitlement paid
    Column("on_day", Date, nullable=False),  # registered on, paid on
    Column("detail", JSON, nullable=False),  # police station; amount and reference
    Column("recorded_by", Integer, ForeignKey("clients.id"), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "stage", "subject"),
)

"""The schema of the signing keys and the certificates they signed, beside ``tables.py``."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, String, Table, Text

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

"""The console's server-side sessions, beside ``tables.py``."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from miaopi.records.tables import UTCDateTime, metadata

# A signed-in person: the cookie holds a random id, this table only its SHA-256, with the
# client it acts as and the CSRF token its forms carry. Ended by signing out or by time.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)

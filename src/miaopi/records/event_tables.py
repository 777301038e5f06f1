"""The schema of events and their webhook deliveries (policy.md §10), beside ``tables.py``.

An event is written in the transaction of the change it reports (a transactional outbox), so
no change is without its event and no event without its change. Its place in the feed
(``position``) is given when it is published, in commit order: a change that commits late gets
a later place instead of one a client has already read past.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
)

from miaopi.records.sealing import SealedText
from miaopi.records.tables import UTCDateTime, metadata

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),  # webhook-id
    Column("type", String(40), nullable=False),
    Column("case_id", String(32)),
    Column("batch_id", String(32)),
    Column("recipient_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    # No personal data beyond the masked name: status, outcome, ids.
    Column("data", JSON, nullable=False),
    Column("position", Integer, unique=True),  # its place in the feed, once published
    Index(None, "recipient_id", "position"),
)

# The last position given (one row), locked by the publisher: publishers take turns.
event_positions = Table(
    "event_positions",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", JSON),  # None: every type
    Column("secret", SealedText("webhook_endpoints.secret"), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("disabled_reason", Text),  # why it stopped: its deliveries kept failing
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    Index(None, "client_id", "seq"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("event_id", String(32), ForeignKey("events.id"), nullable=False),
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed
    Column("attempts", SmallInteger, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),  # taken by a worker until then
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    Index(None, "endpoint_id", "seq"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(32), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", SmallInteger),  # the receiver's answer, if one came
    Column("error", String(200)),  # why not, for the owner: never the body
    Column("duration_ms", Float, nullable=False),
    Index(None, "delivery_id", "seq"),
)

"""The schema of application batches (graduate season), beside ``tables.py``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from miaopi.records.sealing import SealedJSON
from miaopi.records.tables import UTCDateTime, metadata

batches = Table(
    "batches",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("idempotency_key", String(200)),  # the same key and body: the same batch
    Column("request_hash", String(64)),
    Column("status", String(16), nullable=False),  # queued | running | done
    Column("total", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    UniqueConstraint("client_id", "idempotency_key"),
)

batch_items = Table(
    "batch_items",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), ForeignKey("batches.id"), nullable=False),
    Column("row", Integer, nullable=False),  # the item's index, or its CSV row
    Column("item_key", String(100), nullable=False),
    # The application as given: personal data, sealed. None for an item that was invalid.
    Column("body", SealedJSON("batch_items.body")),
    Column("status", String(16), nullable=False),  # pending | done
    Column("outcome", String(16)),  # approved | rejected | referred | invalid
    Column("case_id", String(32)),
    Column("errors", JSON),  # for an invalid item: [{"loc": [...], "msg": "..."}]
    Column("lease_until", UTCDateTime),
    Column("decided_at", UTCDateTime),
    UniqueConstraint("batch_id", "row"),
    Index(None, "status", "seq"),
)

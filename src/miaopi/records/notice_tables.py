"""Objections to approvals in their public notice (policy §11 核准公示), beside ``tables.py``."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from miaopi.records.sealing import SealedText
from miaopi.records.tables import UTCDateTime, metadata

# Anyone may object, with no account. The reason is sealed (it may name the applicant); the
# address is kept only as a keyed hash, enough to see one address filing many.
objections = Table(
    "objections",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("case_id", String(32), ForeignKey("cases.id"), nullable=False),
    Column("approval_number", String(32), nullable=False),
    Column("reason", SealedText("objections.reason"), nullable=False),
    Column("address_hash", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("task_id", String(32), nullable=False),  # the case's objection task
    Index(None, "case_id", "seq"),
)

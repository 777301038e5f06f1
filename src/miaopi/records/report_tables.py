"""What the authority's reports count that no other table keeps (policy §12), beside
``tables.py``: the reasons a case was referred, and the certificates checked online."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from miaopi.records.tables import UTCDateTime, metadata

# A referred case's reasons: each criterion unknown, or failed in refer mode, written with the
# case. Read from the decision's JSON instead, a year's reasons took seconds to count.
referral_reasons = Table(
    "referral_reasons",
    metadata,
    Column("case_id", String(32), ForeignKey("cases.id"), primary_key=True),
    Column("criterion", String(64), primary_key=True),
    Column("result", String(16), nullable=False),  # unknown | fail
)

# Each online verification of a certificate (POST /v1/certificates/verify): when, and what it
# answered. Offline checks are uncounted by nature.
certificate_checks = Table(
    "certificate_checks",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("status", String(8), nullable=False),  # valid | revoked | invalid
    Column("case_id", String(32)),  # the certificate's case, when the token was one
    Index(None, "checked_at"),
)

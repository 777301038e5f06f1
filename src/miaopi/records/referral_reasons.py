"""A referral's reasons, as the reports count them (policy §12): each criterion that was
unknown, or failed in refer mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from miaopi.records.prepared import Prepared
from miaopi.records.report_tables import referral_reasons

_INSERT = Prepared(insert(referral_reasons))


def of(decision: dict[str, Any]) -> list[tuple[str, str]]:
    """(criterion, result) for each reason the decision was referred."""
    return [
        (c["id"], c["result"])
        for c in decision.get("criteria", [])
        if c["result"] == "unknown" or (c["result"] == "fail" and c.get("on_fail") == "refer")
    ]


def record(conn: Connection, case_id: str, decision: dict[str, Any]) -> None:
    for criterion, result in of(decision):
        _INSERT.execute(conn, {"case_id": case_id, "criterion": criterion, "result": result})

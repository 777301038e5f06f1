"""The registry access log: what was asked of which registry, for which case, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, insert, select

from miaopi.records.db import reading, writing
from miaopi.records.prepared import Prepared
from miaopi.records.tables import clients, registry_queries

Purpose = Literal["decision", "dry_run", "recheck"]
_INSERT = Prepared(insert(registry_queries))  # run for every decision (see prepared.py)


def log_queries(
    conn: Connection,
    evidence: list[dict[str, Any]],
    purpose: Purpose,
    requested_by: int | None,
    case_id: str | None = None,
    evaluation_id: str | None = None,
) -> None:
    """One row per query, from the evidence it produced (JSON form, as cases store it)."""
    if not evidence:
        return
    _INSERT.execute(
        conn,
        [
            {
                "case_id": case_id,
                "evaluation_id": evaluation_id,
                "purpose": purpose,
                "requested_by": requested_by,
                "registry": e["registry"],
                "query": e["query"],
                "queried_at": datetime.fromisoformat(e["queried_at"]),
                "elapsed_ms": e["elapsed_ms"],
                "status": e["status"],
                "attempts": e.get("attempts", 1),
            }
            for e in evidence
        ],
    )


def record_queries(
    engine: Engine, evidence: list[dict[str, Any]], purpose: Purpose, **kw: Any
) -> None:
    """The same, in a transaction of its own (dry runs and re-checks record no case)."""
    with writing(engine) as conn:
        log_queries(conn, evidence, purpose, **kw)


def for_case(engine: Engine, case_id: str) -> list[Row[Any]]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(registry_queries, clients.c.role, clients.c.name)
                .outerjoin(clients, clients.c.id == registry_queries.c.requested_by)
                .where(registry_queries.c.case_id == case_id)
                .order_by(registry_queries.c.seq)
            )
        )

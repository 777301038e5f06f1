"""The registry access log: what was asked of which registry, for which case, and why."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, bindparam, func, insert, select

from miaopi.records.engines import reading
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import key_of
from miaopi.records.tables import clients, registry_queries
from miaopi.records.writing import writing

Purpose = Literal["decision", "second_try", "dry_run", "recheck"]
_COLUMNS = ("case_id", "evaluation_id", "purpose", "requested_by", "registry", "query",
            "queried_at", "elapsed_ms", "status", "attempts", "subject_hash")  # fmt: skip


@cache
def _names(row: int) -> tuple[str, ...]:
    return tuple(f"{column}_{row}" for column in _COLUMNS)


@cache
def _insert(rows: int) -> Prepared:
    # All of a decision's queries (4-6) in one statement, run for every decision (prepared.py):
    # on PostgreSQL each statement of a pipeline is a send and a poll of its own in psycopg,
    # and ``executemany`` is one statement per row.
    return Prepared(
        insert(registry_queries).values(
            [
                {
                    column: bindparam(name, type_=registry_queries.c[column].type)
                    for column, name in zip(_COLUMNS, _names(i), strict=True)
                }
                for i in range(rows)
            ]
        )
    )


def log_queries(
    conn: Connection,
    evidence: list[dict[str, Any]],
    purpose: Purpose,
    requested_by: int | None,
    case_id: str | None = None,
    evaluation_id: str | None = None,
    id_number: str | None = None,
) -> None:
    """One row per query, from the evidence it produced (JSON form, as cases store it); a dry
    run's with the keyed hash of the ID number it was about (it names no case: the applicant's
    view finds it by that)."""
    if not evidence:
        return
    subject = key_of(conn.dialect).lookup_hash(id_number) if id_number is not None else None
    values: dict[str, Any] = {}
    for i, e in enumerate(evidence):
        row = (case_id, evaluation_id, purpose, requested_by, e["registry"], e["query"],
               datetime.fromisoformat(e["queried_at"]), e["elapsed_ms"], e["status"],
               e.get("attempts", 1), subject)  # fmt: skip
        values.update(zip(_names(i), row, strict=True))
    _insert(len(evidence)).execute(conn, values)


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


FAILED = ("unavailable", "invalid")  # no answer, or one that could not be read


def recent_failures(engine: Engine, last: int) -> dict[str, tuple[int, int]]:
    """Per registry, (queries, failed) among the last ``last`` queries of all instances: read
    from the newest rows by their key, so it costs the same however long the log grows."""
    newest = (
        select(registry_queries.c.registry, registry_queries.c.status)
        .order_by(registry_queries.c.seq.desc()).limit(last).subquery()
    )  # fmt: skip
    query = select(newest.c.registry, newest.c.status.in_(FAILED).label("failed"),
                   func.count().label("n")).group_by(newest.c.registry, "failed")  # fmt: skip
    found: dict[str, tuple[int, int]] = {}
    with reading(engine) as conn:
        for registry, failed, n in conn.execute(query):
            asked, bad = found.get(registry, (0, 0))
            found[registry] = (asked + n, bad + (n if failed else 0))
    return found

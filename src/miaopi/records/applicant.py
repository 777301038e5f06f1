"""What the applicant may see of their own case (policy §11): found by the case id and the
access code, and every registry query made about them for it or in dry runs on their ID number.

Nothing sealed is opened to find them: the code is compared by its keyed hash, and the queries
are found by the keyed hash of the ID number that each carries (``access_log.log_queries``).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, literal, select, union_all, update

from miaopi.records.engines import reading
from miaopi.records.sealing import key_of
from miaopi.records.tables import cases, clients, registry_queries
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event

_FIELDS = (registry_queries.c.seq, registry_queries.c.case_id, registry_queries.c.purpose,
           registry_queries.c.registry, registry_queries.c.query, registry_queries.c.queried_at,
           registry_queries.c.status, clients.c.name.label("client_name"),
           clients.c.role.label("client_role"))  # fmt: skip


def case_by_code(engine: Engine, case_id: str, code: str) -> Any | None:
    """The case, if ``code`` is its access code; None for an unknown case or a wrong code
    alike (compared in constant time)."""
    with reading(engine) as conn:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None or row.access_code_hash is None:
        return None
    wanted = key_of(engine.dialect).access_code_hash(code)
    return row if hmac.compare_digest(wanted, row.access_code_hash) else None


def queries_about(engine: Engine, case_id: str, id_hash: str | None) -> list[Any]:
    """The case's registry queries, and those of dry runs on the same ID number, in order."""
    for_case = (
        select(*_FIELDS)
        .outerjoin(clients, clients.c.id == registry_queries.c.requested_by)
        .where(registry_queries.c.case_id == case_id)
    )
    parts = [for_case]
    if id_hash is not None:
        parts.append(
            select(*_FIELDS)
            .outerjoin(clients, clients.c.id == registry_queries.c.requested_by)
            .where(
                registry_queries.c.purpose == literal("dry_run"),
                registry_queries.c.subject_hash == id_hash,
            )
        )
    query = union_all(*parts).order_by("seq")
    with reading(engine) as conn:
        return list(conn.execute(query))


def set_access_code(engine: Engine, case_id: str, code: str, actor_id: int, now: datetime) -> None:
    """A new access code for the case, on the case's history; the one before stops working."""
    with writing(engine) as conn:
        status = conn.execute(
            update(cases).where(cases.c.id == case_id)
            .values(access_code_hash=key_of(conn.dialect).access_code_hash(code))
            .returning(cases.c.status)
        ).scalar_one()  # fmt: skip
        add_event(conn, case_id, now, "access_code_issued", status, actor_id, {})

"""Approvals enter supervision: the spot-check draw, audit tasks opened and assigned.

Every function that changes a case's supervision state does it in one transaction with the
change it follows from: an approval with its draw and task (here), a task's closure with the
revocation and fraud bar it decides (``tasks.py``), a re-check's result with the task it opens
(``recheck_claims.py``).
"""

from __future__ import annotations

import secrets
import weakref
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from miaopi.records.engines import dialect_insert, reading
from miaopi.records.paging import new_id
from miaopi.records.prepared import Prepared
from miaopi.records.tables import (
    OPEN_OR_NOT_OBJECTION,
    audit_periods,
    audit_tasks,
    case_events,
    clients,
    spot_check_draws,
    supervision_queue,
)
from miaopi.records.writing import after_commit, writing
from miaopi.supervision.draw import is_selected, new_seed, period_of
from miaopi.supervision.terms import SupervisionTerms

# Run for every approval (see prepared.py).
_INSERT_EVENT = Prepared(insert(case_events))
_INSERT_QUEUED = Prepared(insert(supervision_queue))
_INSERT_DRAW = Prepared(insert(spot_check_draws))
SELECT_SEED = select(audit_periods.c.seed).where(audit_periods.c.period == bindparam("period"))
_SEED = Prepared(SELECT_SEED)
_NEW_SEED = Prepared(
    lambda dialect: dialect_insert(dialect)(audit_periods).on_conflict_do_nothing(
        index_elements=[audit_periods.c.period]
    )
)
_AUDITORS_OUTSIDE = Prepared(
    select(clients.c.id).where(
        clients.c.role == "auditor",
        clients.c.active.is_(True),
        clients.c.district.is_not(None),
        clients.c.district != bindparam("region"),
    )
)
_NEW_TASK = Prepared(
    lambda dialect: (
        dialect_insert(dialect)(audit_tasks)
        .on_conflict_do_nothing(
            index_elements=[audit_tasks.c.case_id, audit_tasks.c.kind],
            index_where=OPEN_OR_NOT_OBJECTION,
        )
        # RETURNING, not rowcount: psycopg does not count a row an implicit RETURNING fetched.
        .returning(audit_tasks.c.id)
    )
)


def add_event(
    conn: Connection,
    case_id: str,
    at: datetime,
    event: str,
    status: str,
    actor_id: int | None,
    detail: dict[str, Any],
) -> None:
    _INSERT_EVENT.execute(
        conn,
        {
            "case_id": case_id,
            "at": at,
            "event": event,
            "status": status,
            "actor_id": actor_id,
            "detail": detail,
        },
    )


# --- the draw and the tasks it opens -------------------------------------------------------


# A period's seed never changes once committed, so a process reads it once per database: on
# PostgreSQL the read was the one answer an approval's transaction waited for before COMMIT.
_committed_seeds: weakref.WeakKeyDictionary[Engine, dict[str, str]] = weakref.WeakKeyDictionary()


def _seed(conn: Connection, period: str, now: datetime) -> str:
    # Made by the first approval of the month; concurrent first approvals agree on one seed.
    known = _committed_seeds.setdefault(conn.engine, {})
    seed: str | None = known.get(period) or _SEED.scalar(conn, {"period": period})
    if seed is not None:  # committed: this transaction only reads it
        known[period] = seed
        return seed
    _NEW_SEED.execute(conn, {"period": period, "seed": new_seed(), "created_at": now})
    seed = _SEED.scalar(conn, {"period": period})
    # Kept only once committed: a rollback takes the seed back, and another one may be drawn.

    def keep() -> None:
        known.setdefault(period, seed)

    after_commit(conn, keep)
    return seed


def _pick_auditor(conn: Connection, employer_region: str | None) -> int | None:
    """An active auditor from another district, at random (交叉检查); None if there is none."""
    if not employer_region:
        return None  # recusal cannot be checked without the employer's district
    candidates = _AUDITORS_OUTSIDE.scalars(conn, {"region": employer_region})
    return secrets.choice(candidates) if candidates else None


def open_task(
    conn: Connection,
    *,
    case_id: str,
    kind: str,
    employer_region: str | None,
    due_date: date,
    now: datetime,
    period: str | None = None,
    discrepancy: list[dict[str, Any]] | None = None,
) -> str | None:
    """A new task, assigned if an auditor is eligible; None if the case has one of this kind
    (for objections: one not yet closed)."""
    auditor = _pick_auditor(conn, employer_region)
    task_id = new_id()
    return _NEW_TASK.scalar(
        conn,
        {
            "id": task_id,
            "case_id": case_id,
            "kind": kind,
            "status": "open" if auditor else "unassigned",
            "auditor_id": auditor,
            "employer_region": employer_region,
            "period": period,
            "due_date": due_date,
            "created_at": now,
            "assigned_at": now if auditor else None,
            "discrepancy": discrepancy,
        },
    )


def enqueue_approval(
    conn: Connection,
    *,
    case_id: str,
    approval_date: date,
    now: datetime,
    risk_class: str | None,
    employer_region: str | None,
    terms: SupervisionTerms,
    rate: str | None = None,
) -> None:
    """Queue an approval for re-check, draw it for a spot check, and open its task if drawn.

    The rate is the employer's risk class's, unless given (a manual approval's is "1")."""
    _INSERT_QUEUED.execute(conn, {"case_id": case_id, "queued_at": now, "state": "queued"})
    period = period_of(approval_date)
    rate = rate or terms.rate_for(risk_class)
    selected = is_selected(_seed(conn, period, now), case_id, rate)
    _INSERT_DRAW.execute(
        conn,
        {
            "case_id": case_id,
            "period": period,
            "risk_class": risk_class,
            "rate": rate,
            "selected": selected,
        },
    )
    if selected:
        open_task(
            conn,
            case_id=case_id,
            kind="spot_check",
            employer_region=employer_region,
            due_date=approval_date + timedelta(days=terms.audit_due_days),
            now=now,
            period=period,
        )


# Tasks given an auditor per transaction: on SQLite each transaction holds the only write slot,
# and every decision of every worker waits for it.
_ASSIGN_BATCH = 200


def assign_waiting(engine: Engine, now: datetime) -> int:
    """Give every unassigned task an eligible auditor where there now is one; how many got one.

    Tasks pile up while a district has no eligible auditor, and every run looks at them all: it
    reads them without writing, and writes only for the districts that now have auditors,
    ``_ASSIGN_BATCH`` tasks per transaction. It held the write slot for the whole scan, whether
    or not a task could be assigned: 0.15-0.2 s for 20,000 waiting tasks on SQLite.
    """
    with reading(engine) as conn:
        waiting = conn.execute(
            select(audit_tasks.c.id, audit_tasks.c.employer_region).where(
                audit_tasks.c.status == "unassigned"
            )
        ).all()
        staffed = {
            region
            for region in {t.employer_region for t in waiting if t.employer_region}
            if _AUDITORS_OUTSIDE.scalars(conn, {"region": region})
        }
    assignable = [t for t in waiting if t.employer_region in staffed]
    assigned = 0
    for start in range(0, len(assignable), _ASSIGN_BATCH):
        with writing(engine) as conn:
            for task in assignable[start : start + _ASSIGN_BATCH]:
                # Picked in the transaction that assigns: an auditor may have left since.
                auditor = _pick_auditor(conn, task.employer_region)
                if auditor is None:
                    continue
                assigned += conn.execute(
                    update(audit_tasks)
                    .where(audit_tasks.c.id == task.id, audit_tasks.c.status == "unassigned")
                    .values(status="open", auditor_id=auditor, assigned_at=now)
                ).rowcount
    return assigned


def release_auditor(engine: Engine, auditor_id: int, now: datetime) -> int:
    """Hand a departing auditor's open tasks to others (or back to waiting); how many moved."""
    with writing(engine) as conn:
        moved = conn.execute(
            update(audit_tasks)
            .where(audit_tasks.c.auditor_id == auditor_id, audit_tasks.c.status == "open")
            .values(status="unassigned", auditor_id=None, assigned_at=None)
        ).rowcount
    assign_waiting(engine, now)
    return moved


# --- reading tasks ---------------------------------------------------------------------------



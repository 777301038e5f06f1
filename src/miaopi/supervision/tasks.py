"""Audit tasks read and closed: the auditor's list, a task's case, closure and revocation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, Row, Select, bindparam, func, insert, select, update

from miaopi.records import events, ledger, live_approvals
from miaopi.records.engines import reading, reading_one
from miaopi.records.ledger import closure_record, revocation_record
from miaopi.records.paging import newest_first
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import key_of
from miaopi.records.tables import (
    audit_tasks,
    case_events,
    cases,
    clients,
    fraud_bars,
    spot_check_draws,
)
from miaopi.records.writing import writing
from miaopi.supervision.queue import SELECT_SEED, add_event


class TaskNotFound(LookupError):
    """No such task among the caller's."""


class TaskClosed(Exception):
    """The task was closed already; a closure is final."""



def _task_query():
    return select(
        audit_tasks,
        cases.c.status.label("case_status"),
        cases.c.business_type,
        cases.c.approval_number,
        cases.c.employer_uscc,
        cases.c.employer_name,
        cases.c.decided_at.label("approved_at"),
        cases.c.applicant_name,
        cases.c.applicant_id_number,
        clients.c.name.label("auditor_name"),
        clients.c.district.label("auditor_district"),
    ).select_from(
        audit_tasks.join(cases, cases.c.id == audit_tasks.c.case_id).outerjoin(
            clients, clients.c.id == audit_tasks.c.auditor_id
        )
    )


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    kind: str | None = None
    overdue: bool | None = None
    period: str | None = None


def task_page(
    engine: Engine,
    auditor_id: int | None,
    today: date,
    limit: int,
    cursor: str | None = None,
    where: TaskFilter = TaskFilter(),
) -> tuple[list[Row[Any]], str | None]:
    """Tasks newest first: one auditor's, or everyone's (and the waiting ones) when None."""
    query = _task_query()
    if auditor_id is not None:
        query = query.where(audit_tasks.c.auditor_id == auditor_id)
    if where.status:
        query = query.where(audit_tasks.c.status == where.status)
    if where.kind:
        query = query.where(audit_tasks.c.kind == where.kind)
    if where.period:
        query = query.where(audit_tasks.c.period == where.period)
    if where.overdue is not None:
        late = (audit_tasks.c.status != "closed") & (audit_tasks.c.due_date < today)
        query = query.where(late if where.overdue else ~late)
    return newest_first(engine, query, audit_tasks.c.seq, limit, cursor)


def waiting_count(engine: Engine) -> int:
    """How many tasks wait for an auditor (none from outside the employer's district yet)."""
    with reading_one(engine) as conn:
        return int(conn.execute(
            select(func.count()).where(audit_tasks.c.status == "unassigned")
        ).scalar_one())  # fmt: skip


# Rows of a period's draws or samples read at a time: a month of graduate season is hundreds of
# thousands of approvals. Each batch is read in a transaction of its own, after the last one's
# key: a transaction held open while a slow client downloads the rest would keep SQLite from
# checkpointing its write-ahead log (and PostgreSQL's vacuum from its dead rows) all along.
DRAW_BATCH = 200


def _batches(engine: Engine, query: Select[Any], key: Any) -> Iterator[Sequence[Row[Any]]]:
    """``query``'s rows by ``key``, ascending, ``DRAW_BATCH`` at a time."""
    after = None
    while True:
        page = query if after is None else query.where(key > after)
        with reading(engine) as conn:
            batch = conn.execute(page.order_by(key).limit(DRAW_BATCH)).all()
        if not batch:
            return
        yield batch
        after = batch[-1]._mapping[key]


def period_samples(
    engine: Engine, auditor_id: int | None, period: str
) -> Iterator[Sequence[Row[Any]]]:
    """A period's spot-check tasks, oldest first, in batches: one auditor's, or all of them when
    None."""
    query = _task_query().where(audit_tasks.c.kind == "spot_check", audit_tasks.c.period == period)
    if auditor_id is not None:
        query = query.where(audit_tasks.c.auditor_id == auditor_id)
    return _batches(engine, query, audit_tasks.c.seq)


def get_task(engine: Engine, task_id: str, auditor_id: int | None) -> Row[Any] | None:
    query = _task_query().where(audit_tasks.c.id == task_id)
    if auditor_id is not None:
        query = query.where(audit_tasks.c.auditor_id == auditor_id)
    with reading(engine) as conn:
        return conn.execute(query).first()


def case_history(engine: Engine, case_id: str) -> list[Row[Any]]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(case_events)
                .where(case_events.c.case_id == case_id)
                .order_by(case_events.c.seq)
            )
        )


# --- closing a task, revoking a case ---------------------------------------------------------


def close_task(
    engine: Engine,
    *,
    task_id: str,
    auditor_id: int,
    findings: dict[str, Any],
    outcome: str,
    reason: str | None,
    now: datetime,
    today: date,
) -> None:
    """Close one's own open task; a ``revoked`` outcome revokes the case and bars the applicant.

    Raises TaskNotFound when the task is not this auditor's, TaskClosed when it was closed.
    """
    with writing(engine) as conn:
        task = conn.execute(
            select(audit_tasks.c.case_id, audit_tasks.c.kind).where(
                audit_tasks.c.id == task_id, audit_tasks.c.auditor_id == auditor_id
            )
        ).first()
        if task is None:
            raise TaskNotFound(task_id)
        closed = conn.execute(
            update(audit_tasks)
            .where(audit_tasks.c.id == task_id, audit_tasks.c.status == "open")
            .values(
                status="closed", findings=findings, outcome=outcome, reason=reason, closed_at=now
            )
        ).rowcount
        if closed != 1:
            raise TaskClosed(task_id)
        case = conn.execute(
            select(
                cases.c.status, cases.c.applicant_id_number, cases.c.applicant_name,
                cases.c.submitted_by,
            ).where(cases.c.id == task.case_id)
        ).one()  # fmt: skip
        revoking = outcome == "revoked" and case.status == "approved"
        status = "revoked" if revoking else case.status
        if revoking:
            conn.execute(
                update(cases)
                .where(cases.c.id == task.case_id)
                .values(status=status, revoked_at=now, revocation_reason=reason)
            )
            # Policy §8: a bar of 5 years from the revocation date (the rules read its length).
            conn.execute(
                insert(fraud_bars).values(
                    id_number=case.applicant_id_number,
                    id_hash=key_of(conn.dialect).lookup_hash(case.applicant_id_number),
                    barred_on=today,
                    case_id=task.case_id,
                    created_at=now,
                )
            )
            live_approvals.release(conn, task.case_id)  # no longer the person's live one
            add_event(
                conn, task.case_id, now, "revoked", status, auditor_id,
                {"task_id": task_id, "reason": reason},
            )  # fmt: skip
            events.case_event(
                conn, "case.revoked", case_id=task.case_id, recipient_id=case.submitted_by,
                applicant_name=case.applicant_name, status=status, at=now,
            )  # fmt: skip
            revoked = conn.execute(select(cases).where(cases.c.id == task.case_id)).one()
            ledger.append(
                conn, "revocation", task.case_id, task.case_id, revocation_record(revoked), now
            )
        add_event(
            conn, task.case_id, now, "audit_closed", status, auditor_id,
            {"task_id": task_id, "kind": task.kind, "outcome": outcome},
        )  # fmt: skip
        closed_task = conn.execute(select(audit_tasks).where(audit_tasks.c.id == task_id)).one()
        ledger.append(
            conn, "audit_closure", task.case_id, task_id, closure_record(closed_task), now
        )


BARS_OF = Prepared(  # asked for every decision (see prepared.py)
    select(fraud_bars.c.barred_on, fraud_bars.c.case_id)
    .where(fraud_bars.c.id_hash == bindparam("id_hash"))
    .order_by(fraud_bars.c.barred_on)
)


# --- the published period ------------------------------------------------------------------


def period_seed(engine: Engine, period: str) -> str | None:
    """The period's seed; None before its first approval."""
    with reading_one(engine) as conn:
        return conn.execute(SELECT_SEED, {"period": period}).scalar_one_or_none()


def period_draws(engine: Engine, period: str) -> Iterator[Sequence[Row[Any]]]:
    """The period's draws by case id, in batches."""
    query = select(spot_check_draws).where(spot_check_draws.c.period == period)
    return _batches(engine, query, spot_check_draws.c.case_id)


# --- the periodic re-check -------------------------------------------------------------------



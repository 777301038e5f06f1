"""Supervision records: draws, audit tasks and who audits them, revocations, re-check state.

Every function that changes a case's supervision state does it in one transaction with the
change it follows from: an approval with its draw and task, a task's closure with the
revocation and fraud bar it decides, a re-check's result with the task it opens.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, bindparam, insert, or_, select, update

from miaopi.eligibility.supervision_terms import SupervisionTerms
from miaopi.records import ledger
from miaopi.records.db import after_commit, dialect_insert, reading, reading_one, writing
from miaopi.records.ledger import closure_record, revocation_record
from miaopi.records.paging import new_id, newest_first
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import key_of
from miaopi.records.tables import (
    audit_periods,
    audit_tasks,
    case_events,
    cases,
    clients,
    fraud_bars,
    spot_check_draws,
    supervision_queue,
)
from miaopi.supervision.draw import is_selected, new_seed, period_of


class TaskNotFound(LookupError):
    """No such task among the caller's."""


class TaskClosed(Exception):
    """The task was closed already; a closure is final."""


# Run for every approval (see prepared.py).
_INSERT_EVENT = Prepared(insert(case_events))
_INSERT_QUEUED = Prepared(insert(supervision_queue))
_INSERT_DRAW = Prepared(insert(spot_check_draws))
_SELECT_SEED = select(audit_periods.c.seed).where(audit_periods.c.period == bindparam("period"))
_SEED = Prepared(_SELECT_SEED)
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
        .on_conflict_do_nothing(index_elements=[audit_tasks.c.case_id, audit_tasks.c.kind])
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
    after_commit(conn, lambda: known.setdefault(period, seed))
    return seed  # type: ignore[return-value]


def _pick_auditor(conn: Connection, employer_region: str | None) -> int | None:
    """An active auditor from another district, at random (交叉检查); None if there is none."""
    if not employer_region:
        return None  # recusal cannot be checked without the employer's district
    candidates = _AUDITORS_OUTSIDE.scalars(conn, {"region": employer_region})
    return secrets.choice(candidates) if candidates else None


def _open_task(
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
    """A new task, assigned if an auditor is eligible; None if the case has one of this kind."""
    auditor = _pick_auditor(conn, employer_region)
    task_id = new_id()
    return _NEW_TASK.scalar(  # type: ignore[no-any-return]
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
) -> None:
    """Queue an approval for re-check, draw it for a spot check, and open its task if drawn."""
    _INSERT_QUEUED.execute(conn, {"case_id": case_id, "queued_at": now, "state": "queued"})
    period = period_of(approval_date)
    rate = terms.rate_for(risk_class)
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
        _open_task(
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


def _task_query():  # type: ignore[no-untyped-def]
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
            select(cases.c.status, cases.c.applicant_id_number).where(cases.c.id == task.case_id)
        ).one()
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
            add_event(
                conn, task.case_id, now, "revoked", status, auditor_id,
                {"task_id": task_id, "reason": reason},
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


_BARS_OF = Prepared(  # asked for every decision (see prepared.py)
    select(fraud_bars.c.barred_on, fraud_bars.c.case_id)
    .where(fraud_bars.c.id_hash == bindparam("id_hash"))
    .order_by(fraud_bars.c.barred_on)
)


def bars_of(engine: Engine, id_number: str) -> list[Any]:
    """The fraud bars this city issued against a person (``barred_on``, ``case_id``), oldest
    first."""
    with reading_one(engine) as conn:
        id_hash = key_of(conn.dialect).lookup_hash(id_number)
        return _BARS_OF.rows(conn, {"id_hash": id_hash})


# --- the published period ------------------------------------------------------------------


def period_seed(engine: Engine, period: str) -> str | None:
    """The period's seed; None before its first approval."""
    with reading_one(engine) as conn:
        return conn.execute(_SELECT_SEED, {"period": period}).scalar_one_or_none()  # type: ignore[no-any-return]


def period_draws(engine: Engine, period: str) -> Iterator[Sequence[Row[Any]]]:
    """The period's draws by case id, in batches."""
    query = select(spot_check_draws).where(spot_check_draws.c.period == period)
    return _batches(engine, query, spot_check_draws.c.case_id)


# --- the periodic re-check -------------------------------------------------------------------


def claim_rechecks(
    engine: Engine,
    *,
    runner: str,
    approved_on_or_before: date,
    now: datetime,
    lease: timedelta,
    limit: int = 100,
) -> list[Row[Any]]:
    """Claim up to ``limit`` approvals waiting for their re-check, approved by the day given.

    Claims are leases: a runner that dies leaves its cases to others when the lease runs out.
    On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so runners on many instances
    claim disjoint batches without waiting on each other; SQLite has one writer at a time.
    """
    with writing(engine) as conn:
        picked = (
            conn.execute(
                select(supervision_queue.c.case_id)
                .join(cases, cases.c.id == supervision_queue.c.case_id)
                .where(
                    supervision_queue.c.state == "queued",
                    or_(
                        supervision_queue.c.claimed_until.is_(None),
                        supervision_queue.c.claimed_until < now,
                    ),
                    cases.c.status == "approved",
                    cases.c.application_date <= approved_on_or_before,
                )
                .order_by(supervision_queue.c.queued_at, supervision_queue.c.case_id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=supervision_queue)
            )
            .scalars()
            .all()
        )
        if not picked:
            return []
        conn.execute(
            update(supervision_queue)
            .where(supervision_queue.c.case_id.in_(picked))
            .values(claimed_by=runner, claimed_until=now + lease)
        )
        return list(conn.execute(select(cases).where(cases.c.id.in_(picked)).order_by(cases.c.seq)))


def release_rechecks(engine: Engine, runner: str) -> None:
    """Give back what a runner claimed and did not finish: the next run tries them again."""
    with writing(engine) as conn:
        conn.execute(
            update(supervision_queue)
            .where(supervision_queue.c.claimed_by == runner, supervision_queue.c.state == "queued")
            .values(claimed_by=None, claimed_until=None)
        )


def finish_recheck(
    engine: Engine,
    *,
    case_id: str,
    runner: str,
    result: str,
    now: datetime,
    discrepancy: list[dict[str, Any]] | None = None,
    employer_region: str | None = None,
    due_date: date | None = None,
) -> str | None:
    """Record a re-check's result (``clean``, ``discrepancy`` or ``missed``); the task it opens.

    Only a case still queued and claimed by this runner is touched: a case is recorded once.
    """
    with writing(engine) as conn:
        done = conn.execute(
            update(supervision_queue)
            .where(
                supervision_queue.c.case_id == case_id,
                supervision_queue.c.state == "queued",
                supervision_queue.c.claimed_by == runner,
            )
            .values(state="rechecked", rechecked_at=now, recheck_result=result)
        ).rowcount
        if done != 1 or result != "discrepancy":
            return None
        if due_date is None or discrepancy is None:
            raise ValueError("a discrepancy needs its criteria and the task's due date")
        task_id = _open_task(
            conn,
            case_id=case_id,
            kind="recheck",
            employer_region=employer_region,
            due_date=due_date,
            now=now,
            discrepancy=discrepancy,
        )
        add_event(
            conn, case_id, now, "recheck_discrepancy", "approved", None,
            {"task_id": task_id, "criteria": [d["criterion"] for d in discrepancy]},
        )  # fmt: skip
        return task_id

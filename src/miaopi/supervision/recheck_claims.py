"""Re-check claims: which instance re-verifies which approval, and what it found (§8)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, or_, select, update

from miaopi.records.tables import (
    cases,
    supervision_queue,
)
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event, open_task


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
        task_id = open_task(
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

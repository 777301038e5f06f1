"""The public notice (policy §11 核准公示): the approvals of the last working days, and the
objections anyone files against one.

An approval is on notice from the decision that gave it, whichever it was: the automatic one
(its number is on the case), a second try's or the counter's. A revoked approval is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select, union_all

from miaopi.records.engines import reading
from miaopi.records.notice_tables import objections
from miaopi.records.paging import new_id
from miaopi.records.tables import audit_tasks, cases, reviews, second_tries
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event, open_task

_CASE = (cases.c.id.label("case_id"), cases.c.business_type, cases.c.applicant_name,
         cases.c.employer_name, cases.c.employer_uscc)  # fmt: skip


def approvals_since(
    engine: Engine,
    since: datetime,
    until: datetime | None,
    business_type: str | None,
    before_number: str | None,
    limit: int,
) -> Sequence[Any]:
    """Approvals in force decided at or after ``since`` (and before ``until``), newest number
    first: ``limit`` of them, below ``before_number`` if given."""
    sources = (
        select(*_CASE, cases.c.approval_number, cases.c.decided_at)
        .where(cases.c.approval_number.is_not(None),
               cases.c.application_date >= since.date(), cases.c.decided_at >= since),
        select(*_CASE, reviews.c.approval_number, reviews.c.decided_at)
        .join(reviews, reviews.c.case_id == cases.c.id)
        .where(reviews.c.approval_number.is_not(None), reviews.c.decided_at >= since),
        select(*_CASE, second_tries.c.approval_number, second_tries.c.decided_at)
        .join(second_tries, second_tries.c.case_id == cases.c.id)
        .where(second_tries.c.approval_number.is_not(None), second_tries.c.decided_at >= since),
    )  # fmt: skip
    parts = []
    for source in sources:
        source = source.where(cases.c.status == "approved")
        if business_type is not None:
            source = source.where(cases.c.business_type == business_type)
        parts.append(source)
    found = union_all(*parts).subquery()
    query = select(found)
    if until is not None:
        query = query.where(found.c.decided_at < until)
    if before_number is not None:
        query = query.where(found.c.approval_number < before_number)
    query = query.order_by(found.c.approval_number.desc()).limit(limit)
    with reading(engine) as conn:
        return list(conn.execute(query))


def record_objection(
    engine: Engine,
    *,
    case_id: str,
    approval_number: str,
    reason: str,
    address_hash: str,
    employer_region: str | None,
    due_date: date,
    now: datetime,
) -> tuple[str, str]:
    """(objection id, task id): the objection, on the case's objection task not yet closed
    (one an earlier objection opened), or on a task opened now and assigned like a spot
    check's. Once a task is closed its auditor has answered it: a later objection is a new
    question, and gets a task of its own."""
    objection_id = new_id()
    with writing(engine) as conn:
        task_id = None
        while task_id is None:
            task_id = open_task(
                conn, case_id=case_id, kind="objection", employer_region=employer_region,
                due_date=due_date, now=now,
            ) or conn.execute(
                select(audit_tasks.c.id).where(
                    audit_tasks.c.case_id == case_id, audit_tasks.c.kind == "objection",
                    audit_tasks.c.status != "closed",
                )
            ).scalar_one_or_none()  # None: closed since; the next try opens a new one
        conn.execute(objections.insert().values(
            id=objection_id, case_id=case_id, approval_number=approval_number, reason=reason,
            address_hash=address_hash, received_at=now, task_id=task_id,
        ))  # fmt: skip
        add_event(conn, case_id, now, "objection_received", "approved", None,
                  {"objection_id": objection_id, "task_id": task_id})  # fmt: skip
    return objection_id, task_id


def of_task(engine: Engine, task_id: str) -> list[Any]:
    """The objections a task answers, oldest first (for its auditor)."""
    with reading(engine) as conn:
        return list(conn.execute(
            select(objections.c.id, objections.c.reason, objections.c.received_at)
            .where(objections.c.task_id == task_id).order_by(objections.c.seq)
        ))  # fmt: skip

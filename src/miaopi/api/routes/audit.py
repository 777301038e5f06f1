"""Supervision: auditors' tasks and findings, and the published spot-check periods."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from miaopi.api.deps import Auditor, ContainerDep, Cursor, Supervisor
from miaopi.api.errors import Problem, invalid
from miaopi.api.presenters import audited_case_body, task_body
from miaopi.api.routes.applications import PROBLEMS
from miaopi.api.schemas import (
    FindingsIn,
    PeriodOut,
    ProblemOut,
    TaskDetail,
    TaskKind,
    TaskList,
    TaskStatus,
)
from miaopi.bootstrap import Container
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import cases, db, supervision
from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.supervision.draw import has_ended, parse_period, seed_commitment

router = APIRouter(prefix="/v1/audit", tags=["supervision"])

PeriodParam = Annotated[str, Path(description="A calendar month, YYYY-MM", examples=["2026-10"])]


def _own(client: Client) -> int | None:
    """Whose tasks the client sees: an auditor their own, an admin everyone's."""
    return None if client.role == "admin" else client.id


def _today(container: Container) -> Any:
    return today_in_shanghai(container.clock())


async def _task(container: Container, client: Client, task_id: str) -> Any:
    row = await db.run(container.db, supervision.get_task, task_id, _own(client))
    if row is None:
        raise Problem(404, "task not found")
    return row


async def _detail(container: Container, client: Client, task: Any) -> dict[str, Any]:
    case = await db.run(container.db, cases.get, task.case_id, Scope("all"))
    history = await run_in_threadpool(supervision.case_history, container.db, task.case_id)
    body = task_body(task, _today(container))
    body["case"] = audited_case_body(case, history, client)
    return body


@router.get(
    "/tasks",
    response_model=TaskList,
    responses=PROBLEMS,
    summary="Audit tasks: an auditor's own, or all of them (waiting ones included) for admins",
)
async def list_tasks(
    client: Supervisor,
    container: ContainerDep,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    overdue: bool | None = None,
    period: Annotated[str | None, Query(description="YYYY-MM of the draw")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    if period is not None:
        _period(period, ["query", "period"])
    today = _today(container)
    rows, next_cursor = await run_in_threadpool(
        supervision.task_page,
        container.db,
        _own(client),
        today,
        limit,
        cursor,
        supervision.TaskFilter(status=status, kind=kind, overdue=overdue, period=period),
    )
    return {"items": [task_body(r, today) for r in rows], "next_cursor": next_cursor}


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    responses=PROBLEMS,
    summary="One task with its whole case: evidence, criteria and history",
)
async def read_task(task_id: str, client: Supervisor, container: ContainerDep) -> Any:
    return await _detail(container, client, await _task(container, client, task_id))


@router.post(
    "/tasks/{task_id}/findings",
    response_model=TaskDetail,
    responses={**PROBLEMS, 409: {"model": ProblemOut, "description": "Already closed"}},
    summary="Close one's own task with findings; `revoked` revokes the approval",
)
async def close_task(
    task_id: str, body: FindingsIn, client: Auditor, container: ContainerDep
) -> Any:
    if body.outcome == "revoked" and not body.reason:
        raise invalid(["body", "reason"], "a revocation needs its reason")
    now = container.clock()
    try:
        await run_in_threadpool(
            lambda: supervision.close_task(
                container.db,
                task_id=task_id,
                auditor_id=client.id,
                findings=body.model_dump(
                    include={"completeness", "consistency", "compliance", "notes"}
                ),
                outcome=body.outcome,
                reason=body.reason,
                now=now,
                today=today_in_shanghai(now),
            )
        )
    except supervision.TaskNotFound:
        raise Problem(404, "task not found") from None
    except supervision.TaskClosed:
        raise Problem(
            409, "this task is closed already; a closure is final", slug="task-closed"
        ) from None
    return await _detail(container, client, await _task(container, client, task_id))


def _period(text: str, loc: list[str]) -> None:
    try:
        parse_period(text)
    except ValueError as exc:
        raise invalid(loc, str(exc)) from exc


@router.get(
    "/periods/{period}",
    response_model=PeriodOut,
    responses=PROBLEMS,
    summary="A month's spot-check draw: rates, every approval and whether it was drawn; "
    "the seed once the month has ended",
)
async def read_period(period: PeriodParam, client: Supervisor, container: ContainerDep) -> Any:
    _period(period, ["path", "period"])
    seed, draws = await run_in_threadpool(supervision.period_draws, container.db, period)
    ended = has_ended(period, _today(container))
    rates = sorted({(d.risk_class or "", d.rate) for d in draws})
    return {
        "period": period,
        "ended": ended,
        "seed": seed if ended else None,
        "seed_sha256": seed_commitment(seed) if seed else None,
        "rates": [{"risk_class": c or None, "rate": r} for c, r in rates],
        "approvals": len(draws),
        "selected": [d.case_id for d in draws if d.selected],
        "draws": [
            {
                "case_id": d.case_id,
                "risk_class": d.risk_class,
                "rate": d.rate,
                "selected": d.selected,
            }
            for d in draws
        ],
    }


_CSV_COLUMNS = (
    "task_id", "case_id", "status", "due_date", "overdue", "approval_number", "business_type",
    "employer_uscc", "employer_name", "applicant_name", "applicant_id_number", "auditor",
    "auditor_district", "outcome", "reason", "closed_at",
)  # fmt: skip


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would read as a formula is quoted (CSV injection, OWASP).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get(
    "/periods/{period}/samples.csv",
    response_class=Response,
    responses={
        **PROBLEMS,
        200: {"content": {"text/csv": {}}, "description": "The period's spot-check tasks"},
    },
    summary="A month's spot-check tasks as CSV: an auditor's own, or all of them for admins",
)
async def export_samples(period: PeriodParam, client: Supervisor, container: ContainerDep) -> Any:
    _period(period, ["path", "period"])
    today = _today(container)
    rows = await run_in_threadpool(supervision.period_samples, container.db, _own(client), period)
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 (Chinese names) only with a byte-order mark
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        task = task_body(row, today)
        writer.writerow(
            _cell(v)
            for v in (
                row.id, row.case_id, row.status, row.due_date, task["overdue"],
                row.approval_number, row.business_type, row.employer_uscc, row.employer_name,
                row.applicant_name, row.applicant_id_number, row.auditor_name,
                row.auditor_district, row.outcome, row.reason, row.closed_at,
            )
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="samples-{period}.csv"'},
    )

"""Supervision: auditors' tasks and findings, and the published spot-check periods."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from miaopi.api.audit_schemas import (
    FindingsIn,
    PeriodOut,
    TaskDetail,
    TaskKind,
    TaskList,
    TaskStatus,
)
from miaopi.api.deps import Auditor, ContainerDep, Cursor, Supervisor
from miaopi.api.errors import Problem, invalid
from miaopi.api.presenters import audited_case_body, task_body
from miaopi.api.routes.applications import PROBLEMS
from miaopi.api.schemas import ProblemOut
from miaopi.api.spreadsheet import cell
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.bootstrap import Container
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import cases, notices
from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.supervision import tasks
from miaopi.supervision.draw import has_ended, parse_period, seed_commitment
from miaopi.usecases import close_task as closing
from miaopi.usecases.access import own_tasks

router = APIRouter(prefix="/v1/audit", tags=["supervision"], route_class=StrictJsonRoute)

# YYYY-MM, the year from 0001 (what a date can hold).
PERIOD = "^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])$"
PeriodParam = Annotated[
    str,
    Path(
        pattern=PERIOD,
        description="A calendar month, YYYY-MM",
        examples=["2026-10"],
    ),
]


def _today(container: Container) -> Any:
    return today_in_shanghai(container.clock())


async def _task(container: Container, client: Client, task_id: str) -> Any:
    row = await container.database.run(tasks.get_task, task_id, own_tasks(client))
    if row is None:
        raise Problem(404, "task not found")
    return row


async def _detail(container: Container, client: Client, task: Any) -> dict[str, Any]:
    case = await container.database.run(cases.get, task.case_id, Scope("all"))
    history = await container.database.run_in_thread(tasks.case_history, task.case_id)
    body = task_body(task, _today(container))
    body["case"] = audited_case_body(case, history, client)
    if task.kind == "objection":
        found = await container.database.run(notices.of_task, task.id)
        body["objections"] = [
            {"objection_id": o.id, "reason": o.reason, "received_at": o.received_at}
            for o in found
        ]
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
    period: Annotated[
        str | None, Query(pattern=PERIOD, description="YYYY-MM of the draw")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    if period is not None:
        _period(period, ["query", "period"])
    today = _today(container)
    rows, next_cursor = await container.database.run_in_thread(tasks.task_page, own_tasks(client),
        today,
        limit,
        cursor,
        tasks.TaskFilter(status=status, kind=kind, overdue=overdue, period=period),
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
    findings = closing.Findings(
        checks=body.model_dump(include={"completeness", "consistency", "compliance", "notes"}),
        outcome=body.outcome,
        reason=body.reason,
    )
    await closing.close_task(task_id, findings, client, uow=container.uow, now=container.clock())
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
    document = _period_document(container, period)
    # The seed is read here: a database that cannot answer is a 503, not a broken stream.
    head = await run_in_threadpool(next, document)
    return StreamingResponse(chain([head], document), media_type="application/json")


def _period_document(container: Container, period: str) -> Iterator[str]:
    """The period as ``PeriodOut``, written out as its draws are read, in a worker thread.

    A month of graduate season is hundreds of thousands of approvals: built whole, the
    document was made on the event loop, all in memory at once, and every decision of the
    process waited for it (bench/period.py measures both ways).
    The draws come first and what is summed up from them after, so each is read once.
    """
    ended = has_ended(period, _today(container))
    seed = tasks.period_seed(container.database.engine, period)
    yield (
        _json_fields(
            period=period,
            ended=ended,
            seed=seed if ended else None,
            seed_sha256=seed_commitment(seed) if seed else None,
        )
        + ',"draws":['
    )
    rates: set[tuple[str, str]] = set()
    selected: list[str] = []
    approvals = 0
    for batch in tasks.period_draws(container.database.engine, period):
        draws = []
        for d in batch:
            draws.append({"case_id": d.case_id, "risk_class": d.risk_class, "rate": d.rate,
                          "selected": d.selected})  # fmt: skip
            rates.add((d.risk_class or "", d.rate))
            if d.selected:
                selected.append(d.case_id)
        yield ("," if approvals else "") + json.dumps(draws, separators=(",", ":"))[1:-1]
        approvals += len(draws)
    yield (
        "],"
        + _json_fields(
            rates=[{"risk_class": c or None, "rate": r} for c, r in sorted(rates)],
            approvals=approvals,
            selected=selected,
        )[1:]
        + "}"
    )


def _json_fields(**fields: Any) -> str:
    """An object's opening and its fields, left open for more: ``{"a":1,"b":2``."""
    return json.dumps(fields, separators=(",", ":"))[:-1]


_CSV_COLUMNS = (
    "task_id", "case_id", "status", "due_date", "overdue", "approval_number", "business_type",
    "employer_uscc", "employer_name", "applicant_name", "applicant_id_number", "auditor",
    "auditor_district", "outcome", "reason", "closed_at",
)  # fmt: skip


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
    document = _samples_csv(container, own_tasks(client), period)
    head = await run_in_threadpool(next, document)  # as read_period: a fault is a 503
    return StreamingResponse(
        chain([head], document),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="samples-{period}.csv"'},
    )


def _samples_csv(container: Container, auditor_id: int | None, period: str) -> Iterator[str]:
    """The samples as CSV, written out as they are read, in a worker thread (read_period)."""
    today = _today(container)
    batches = tasks.period_samples(container.database.engine, auditor_id, period)
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 (Chinese names) only with a byte-order mark
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    first = next(batches, [])  # read before the answer starts, as read_period's seed
    for batch in chain([first], batches):
        for row in batch:
            task = task_body(row, today)
            writer.writerow(
                cell(v)
                for v in (
                    row.id, row.case_id, row.status, row.due_date, task["overdue"],
                    row.approval_number, row.business_type, row.employer_uscc,
                    row.employer_name, row.applicant_name, row.applicant_id_number,
                    row.auditor_name, row.auditor_district, row.outcome, row.reason,
                    row.closed_at,
                )
            )  # fmt: skip
        yield out.getvalue()
        out.seek(0)
        out.truncate()

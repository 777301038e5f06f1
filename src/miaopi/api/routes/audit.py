"""Supervision: auditors' tasks and findings, and the published spot-check periods."""

from __future__ import annotations

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
from miaopi.api.period_documents import period_document, samples_csv
from miaopi.api.presenters import audited_case_body, task_body
from miaopi.api.routes.applications import PROBLEMS
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.bootstrap import Container
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import cases, notices
from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.supervision import tasks
from miaopi.supervision.draw import parse_period
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
    await closing.close_task(
        task_id, body.findings(), client, uow=container.uow, now=container.clock()
    )
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
    document = period_document(container, period)
    # The seed is read here: a database that cannot answer is a 503, not a broken stream.
    head = await run_in_threadpool(next, document)
    return StreamingResponse(chain([head], document), media_type="application/json")


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
    document = samples_csv(container, own_tasks(client), period)
    head = await run_in_threadpool(next, document)  # as read_period: a fault is a 503
    return StreamingResponse(
        chain([head], document),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="samples-{period}.csv"'},
    )

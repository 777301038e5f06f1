"""The officer's and the auditor's pages: the same use cases and scopes as the API's.

An officer sees the review queue and a review's case with personal data masked, as the API
masks it for their role; an auditor sees only the tasks given to them, and those tasks' cases
whole.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from miaopi.api.audit_schemas import FindingsIn
from miaopi.api.errors import as_problem
from miaopi.api.presenters import (
    audited_case_body,
    case_body,
    in_language,
    review_body,
    task_body,
)
from miaopi.api.review_schemas import DocumentRequestIn, ReviewDecisionIn
from miaopi.console.auth import form_of, session_for
from miaopi.console.pages import DOCUMENT_HEADERS, language, redirect, render
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import cases, notices
from miaopi.records.cases import Scope
from miaopi.supervision import tasks
from miaopi.usecases import close_task as closing
from miaopi.usecases import documents, reviews
from miaopi.usecases.access import own_tasks
from miaopi.usecases.errors import NotFound, UseCaseError

router = APIRouter(prefix="/console", include_in_schema=False)


def _worded(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The case's criteria in the console's language, as the rule files word them."""
    return in_language(body, request.app.state.container.rulebook, language(request))


def _today(request: Request) -> Any:
    return today_in_shanghai(request.app.state.container.clock())


# --- the officer ----------------------------------------------------------------------------


@router.get("/reviews")
async def review_queue(request: Request, status: str = "", overdue: str = "") -> Response:
    session = await session_for(request, "officer", "admin")
    container, today = request.app.state.container, _today(request)
    wanted = status if status in ("waiting", "in_review", "awaiting_documents", "closed") else None
    late = True if overdue == "1" else None
    rows, _ = await container.uow.reviews(100, None, wanted, late, today)
    items = [review_body(r, today) for r in rows]
    # Overdue first, then the soonest due; a review whose clock is stopped last.
    items.sort(key=lambda r: (not r["overdue"], r["due_date"] or "9999-12-31"))
    return render(request, "reviews.html", session=session, items=items, chosen=wanted or "",
                  overdue=overdue == "1")  # fmt: skip


async def _review_page(
    request: Request, session: Any, review_id: str, status: int = 200, **more: Any
) -> Response:
    container, today = request.app.state.container, _today(request)
    review = await reviews.find_review(container.uow, review_id)
    case = await container.database.run(cases.get, review.case_id, Scope("all"))
    body = _worded(request, case_body(case, session.client))  # masked, as the API masks it
    open_, _ = reviews.to_resolve(body["decision"]["criteria"])
    holder = review.officer_id == session.client.id and review.status == "in_review"
    answered = await documents.answered_items(container.uow, review)
    return render(request, "review.html", status=status, session=session,
                  review=review_body(review, today, answered), case=body, open=open_,
                  holder=holder, documents=await _documents(request, session, review.case_id),
                  **more)  # fmt: skip


async def _documents(request: Request, session: Any, case_id: str) -> list[Any]:
    """The case's documents if the API would show them to this person, else none."""
    try:
        return await documents.documents_of(request.app.state.container.uow, session.client,
                                            case_id)  # fmt: skip
    except NotFound:
        return []


@router.get("/cases/{case_id}/documents/{document_id}")
async def document(request: Request, case_id: str, document_id: str) -> Response:
    """A document for its preview on the page (inline, from this origin only); the same
    readers as the API's."""
    session = await session_for(request, "officer", "auditor", "admin")
    try:
        row = await documents.document(request.app.state.container.uow, session.client,
                                       case_id, document_id)  # fmt: skip
    except NotFound:
        return render(request, "refused.html", status=404, session=session, reason="not_found")
    return Response(row.content, media_type=row.media_type, headers=DOCUMENT_HEADERS)


@router.post("/reviews/{review_id}/document-requests")
async def request_documents(request: Request, review_id: str) -> Response:
    session = await session_for(request, "officer")
    form = await form_of(request, session)
    container = request.app.state.container
    items = [{"criterion": k.removeprefix("need:"), "description": v}
             for k, v in form.items() if k.startswith("need:") and v.strip()]  # fmt: skip
    if not items:
        return await _review_page(request, session, review_id, 422, error_request="empty")
    try:
        wanted = DocumentRequestIn.model_validate({"items": items}).wanted()  # as the API's
    except ValidationError as exc:
        return await _review_page(request, session, review_id, 422, error_fields=_fields(exc))
    return await _acted(request, session, review_id, documents.request_documents(
        review_id, wanted, session.client, uow=container.uow, calendar=container.calendar,
        now=container.clock(),
    ))  # fmt: skip


def _fields(exc: ValidationError) -> list[str]:
    """The form's fields a validation error names (``resolutions.0.note`` and the like)."""
    return sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})


async def _acted(request: Request, session: Any, review_id: str, act: Awaitable[Any]) -> Response:
    """An officer's act on a review done, then back to its page (post, redirect, get); or the
    page again, saying why it was refused."""
    try:
        await act
    except UseCaseError as exc:
        return await _review_page(request, session, review_id, as_problem(exc).status,
                                  error=str(exc))  # fmt: skip
    return redirect(f"/console/reviews/{review_id}")


@router.get("/reviews/{review_id}")
async def review_page(request: Request, review_id: str) -> Response:
    session = await session_for(request, "officer", "admin")
    try:
        return await _review_page(request, session, review_id)
    except UseCaseError as exc:
        return render(request, "refused.html", status=as_problem(exc).status, session=session,
                      reason="not_found")  # fmt: skip


@router.post("/reviews/{review_id}/claim")
async def claim(request: Request, review_id: str) -> Response:
    session = await session_for(request, "officer")
    await form_of(request, session)
    container = request.app.state.container
    return await _acted(request, session, review_id, reviews.claim(
        review_id, session.client, uow=container.uow, now=container.clock()))  # fmt: skip


@router.post("/reviews/{review_id}/decision")
async def decide(request: Request, review_id: str) -> Response:
    session = await session_for(request, "officer")
    form = await form_of(request, session)
    container = request.app.state.container
    if form.get("outcome") not in ("approved", "rejected"):
        return await _review_page(request, session, review_id, 422, error_outcome=True)
    criteria = [k.removeprefix("result:") for k in form if k.startswith("result:")]
    resolutions = [
        {"criterion": c, "result": form[f"result:{c}"], "basis": form.get(f"basis:{c}", "note"),
         "document_id": form.get(f"document:{c}") or None, "note": form.get(f"note:{c}") or None}
        for c in criteria if form[f"result:{c}"]  # "—": not resolved here
    ]  # fmt: skip
    body = {"outcome": form["outcome"], "reason": form.get("reason") or None,
            "resolutions": resolutions}  # fmt: skip
    try:
        decision = ReviewDecisionIn.model_validate(body).decision()  # as the API's
    except ValidationError as exc:
        return await _review_page(request, session, review_id, 422, error_fields=_fields(exc))
    return await _acted(request, session, review_id, reviews.decide(
        review_id, decision, session.client, uow=container.uow, engine=container.rule_engine,
        city_prefix=container.settings.city_prefix, now=container.clock(),
    ))  # fmt: skip


# --- the auditor ----------------------------------------------------------------------------


@router.get("/tasks")
async def task_list(request: Request, kind: str = "", overdue: str = "") -> Response:
    session = await session_for(request, "auditor", "admin")
    container, today = request.app.state.container, _today(request)
    where = tasks.TaskFilter(
        kind=kind if kind in ("spot_check", "recheck", "objection") else None,
        overdue=True if overdue == "1" else None,
    )
    rows, _ = await container.database.run_in_thread(
        tasks.task_page, own_tasks(session.client), today, 100, None, where
    )
    items = [task_body(r, today) for r in rows]
    items.sort(key=lambda t: (t["status"] == "closed", not t["overdue"], t["due_date"]))
    return render(request, "tasks.html", session=session, items=items, kind=where.kind or "",
                  overdue=overdue == "1")  # fmt: skip


async def _task_page(
    request: Request, session: Any, task_id: str, status: int = 200, **more: Any
) -> Response:
    container, today = request.app.state.container, _today(request)
    task = await container.database.run(tasks.get_task, task_id, own_tasks(session.client))
    if task is None:
        return render(request, "refused.html", status=404, session=session, reason="not_found")
    case = await container.database.run(cases.get, task.case_id, Scope("all"))
    history = await container.database.run_in_thread(tasks.case_history, task.case_id)
    objections = []
    if task.kind == "objection":
        objections = await container.database.run(notices.of_task, task.id)
    return render(request, "task.html", status=status, session=session,
                  task=task_body(task, today),
                  case=_worded(request, audited_case_body(case, history, session.client)),
                  objections=objections,
                  documents=await _documents(request, session, task.case_id),
                  **more)  # fmt: skip


@router.get("/tasks/{task_id}")
async def task_page(request: Request, task_id: str) -> Response:
    session = await session_for(request, "auditor", "admin")
    return await _task_page(request, session, task_id)


@router.post("/tasks/{task_id}/findings")
async def findings(request: Request, task_id: str) -> Response:
    session = await session_for(request, "auditor")
    form = await form_of(request, session)
    container = request.app.state.container
    fields = ("completeness", "consistency", "compliance", "notes", "outcome", "reason")
    filled = {k: form[k] for k in fields if form.get(k, "").strip()}
    try:
        given = FindingsIn.model_validate(filled)  # as the API takes them
    except ValidationError:
        return await _task_page(request, session, task_id, 422, error="fields", filled=filled)
    if given.outcome == "revoked" and form.get("confirmed") != "yes":
        # Revocation is final: one more step, on a page that says what it does.
        return await _task_page(request, session, task_id, confirm=True, filled=filled)
    try:
        await closing.close_task(task_id, given.findings(), session.client, uow=container.uow,
                                 now=container.clock())  # fmt: skip
    except UseCaseError as exc:
        return await _task_page(request, session, task_id, as_problem(exc).status,
                                error=str(exc), filled=filled)  # fmt: skip
    return redirect(f"/console/tasks/{task_id}")

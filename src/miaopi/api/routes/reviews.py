"""The counter review (policy §9): the queue, an officer's claim, the officer's decision."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from miaopi.api.deps import ContainerDep, Cursor, Officer, Reviewer
from miaopi.api.presenters import review_body
from miaopi.api.review_schemas import DocumentRequestIn, ReviewDecisionIn, ReviewList, ReviewOut
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.usecases import documents, reviews

router = APIRouter(prefix="/v1", tags=["counter review"], route_class=StrictJsonRoute)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 413, 422, 429)
}


@router.get(
    "/reviews",
    response_model=ReviewList,
    responses=PROBLEMS,
    summary="The counter review queue, newest first; overdue=true: open and past due",
)
async def list_reviews(
    _: Reviewer,
    container: ContainerDep,
    status: Annotated[
        str | None, Query(pattern="^(waiting|in_review|awaiting_documents|closed)$")
    ] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    today = today_in_shanghai(container.clock())
    rows, next_cursor = await container.uow.reviews(limit, cursor, status, overdue, today)
    items = [review_body(r, today, await documents.answered_items(container.uow, r)) for r in rows]
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/reviews/{review_id}",
    response_model=ReviewOut,
    responses=PROBLEMS,
    summary="One counter review with its case in summary",
)
async def read_review(review_id: str, _: Reviewer, container: ContainerDep) -> Any:
    review = await reviews.find_review(container.uow, review_id)
    answered = await documents.answered_items(container.uow, review)
    return review_body(review, today_in_shanghai(container.clock()), answered)


@router.post(
    "/reviews/{review_id}/claim",
    response_model=ReviewOut,
    responses=PROBLEMS,
    summary="Take a waiting review (409 if another officer has it)",
)
async def claim_review(review_id: str, officer: Officer, container: ContainerDep) -> Any:
    now = container.clock()
    review = await reviews.claim(review_id, officer, uow=container.uow, now=now)
    return review_body(review, today_in_shanghai(now))


@router.post(
    "/reviews/{review_id}/document-requests",
    response_model=ReviewOut,
    status_code=201,
    responses=PROBLEMS,
    summary="Ask the submitter once for every document needed (一次性告知); the clock stops",
)
async def request_documents(
    review_id: str, body: DocumentRequestIn, officer: Officer, container: ContainerDep
) -> Any:
    now = container.clock()
    review = await documents.request_documents(
        review_id,
        body.wanted(),
        officer,
        uow=container.uow,
        calendar=container.calendar,
        now=now,
    )
    return review_body(review, today_in_shanghai(now))


@router.post(
    "/reviews/{review_id}/decision",
    response_model=ReviewOut,
    responses=PROBLEMS,
    summary="Decide one's own review, resolving every open criterion",
)
async def decide_review(
    review_id: str, body: ReviewDecisionIn, officer: Officer, container: ContainerDep
) -> Any:
    decision = body.decision()
    now = container.clock()
    review = await reviews.decide(
        review_id,
        decision,
        officer,
        uow=container.uow,
        engine=container.rule_engine,
        city_prefix=container.settings.city_prefix,
        now=now,
    )
    answered = await documents.answered_items(container.uow, review)
    return review_body(review, today_in_shanghai(now), answered)

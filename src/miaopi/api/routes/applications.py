"""Applications: decide now and record (POST), read back within scope (GET), dry runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from miaopi.api.deps import ContainerDep, Cursor, Evaluator, Reader, Submitter, Supervisor
from miaopi.api.errors import invalid, wants_chinese
from miaopi.api.presenters import case_body, evaluation_body, in_language, with_later_decisions
from miaopi.api.schemas import (
    AccessLogOut,
    ApplicationIn,
    BusinessTypeName,
    CaseList,
    CaseOut,
    EvaluationIn,
    EvaluationResultOut,
    ProblemOut,
    ReplayOut,
)
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.bootstrap import Container
from miaopi.domain import Application, CaseStatus
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.model import canonical_json
from miaopi.records import access_log, cases
from miaopi.records.clients import Client
from miaopi.usecases import documents
from miaopi.usecases import dry_run as dry_runs
from miaopi.usecases import replay as replays
from miaopi.usecases import stages as stage_list
from miaopi.usecases import submit as submissions
from miaopi.usecases.access import case_in_scope, scope_of

router = APIRouter(prefix="/v1", tags=["applications"], route_class=StrictJsonRoute)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 413, 422, 429)
}
# The routes that decide: their process may be deciding all it can already (``overloaded``),
# or the database may not answer (``database-unavailable``); either way nothing was recorded.
DECIDING_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    503: {
        "model": ProblemOut,
        "content": {"application/problem+json": {}},
        "description": "Overloaded, or the database did not answer: retry after Retry-After",
    },
}


def application_of(body: ApplicationIn) -> Application:
    claims = {k: v for k, v in body.claims.model_dump().items() if v is not None}
    return Application(
        business_type=body.business_type,
        applicant_name=body.applicant.name,
        id_number=body.applicant.id_number,
        employer_uscc=body.employer.uscc,
        claims=claims,
        commitment_version=body.commitment.version,
    )


def worded(body: dict[str, Any], request: Request, container: Container) -> dict[str, Any]:
    """The body's criteria in Chinese for a client that asks for it (Accept-Language: zh)."""
    return in_language(body, container.rulebook, "zh" if wants_chinese(request) else "en")


def _replayed(row: Any, client: Client, request: Request, container: Container) -> JSONResponse:
    # Through the response model and in the asked language, like the first answer, so a
    # replay is the same JSON.
    body = worded(case_body(row, client), request, container)
    replayed = CaseOut.model_validate(body).model_dump(mode="json")
    return JSONResponse(replayed, headers={"Idempotent-Replayed": "true"})


@router.post(
    "/applications",
    status_code=201,
    response_model=CaseOut,
    responses={**DECIDING_PROBLEMS, 200: {"model": CaseOut, "description": "Idempotent replay"}},
    summary="Decide an application now and record the case",
)
async def submit(
    body: ApplicationIn,
    client: Submitter,
    container: ContainerDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, description="Replays the same case")
    ] = None,
) -> Any:
    submission = submissions.Submission(
        application=application_of(body),
        client=client,
        canonical_body=canonical_json(body.model_dump(mode="json")),
        idempotency_key=idempotency_key,
    )
    done = await submissions.submit(
        submission,
        decider=container.decider,
        uow=container.uow,
        city_prefix=container.settings.city_prefix,
        calendar=container.calendar,
    )
    if done.replayed:
        return _replayed(done.case, client, request, container)
    response.headers["Location"] = f"/v1/applications/{done.case.id}"
    return worded(case_body(done.case, client), request, container)


@router.post(
    "/evaluations",
    response_model=EvaluationResultOut,
    responses=DECIDING_PROBLEMS,
    summary="Dry run: decide without recording a case (its registry queries are logged)",
)
async def dry_run(
    body: EvaluationIn, client: Evaluator, container: ContainerDep, request: Request
) -> Any:
    done = await dry_runs.dry_run(
        application_of(body), client, body.as_of, decider=container.decider, uow=container.uow
    )
    answer = {"evaluation_id": done.evaluation_id, **evaluation_body(done.decision, client)}
    return worded(answer, request, container)


@router.get(
    "/applications/{case_id}",
    response_model=CaseOut,
    responses=PROBLEMS,
    summary="One case, within the caller's scope",
)
async def read(case_id: str, client: Reader, container: ContainerDep, request: Request) -> Any:
    row = await case_in_scope(container.uow, client, case_id)
    body = worded(case_body(row, client), request, container)
    body["stages"] = await stage_list.stages_of(container.database, row)
    if row.outcome != "referred":
        return body
    # A referred case has second tries, a counter review, or both (policy §9).
    tries = await container.uow.second_tries(row.id)
    review = await container.uow.review_of_case(row.id)
    answered = await documents.answered_items(container.uow, review) if review else []
    today = today_in_shanghai(container.clock())
    return with_later_decisions(body, tries, review, client, today, answered)


@router.get(
    "/applications",
    response_model=CaseList,
    responses=PROBLEMS,
    summary="Cases within the caller's scope, newest first",
)
async def list_cases(
    client: Reader,
    container: ContainerDep,
    request: Request,
    status: CaseStatus | None = None,
    business_type: BusinessTypeName | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    if business_type is not None and business_type not in container.rulebook.business_types():
        raise invalid(["query", "business_type"], "no rule file defines this business type")
    rows, next_cursor = await container.database.run_in_thread(
        cases.page, scope_of(client), limit, cursor, status, business_type
    )
    return {"items": [worded(case_body(r, client), request, container) for r in rows],
            "next_cursor": next_cursor}  # fmt: skip


@router.post(
    "/applications/{case_id}/replay",
    response_model=ReplayOut,
    responses=PROBLEMS,
    summary="Re-evaluate the recorded evidence under the recorded rule version",
)
async def replay_case(case_id: str, client: Supervisor, container: ContainerDep) -> Any:
    case_id, result, later = await replays.replay_case(
        case_id, client, uow=container.uow, engine=container.rule_engine
    )
    return {
        "case_id": case_id,
        "identical": result.identical,
        "recorded_outcome": result.recorded_outcome,
        "replayed_outcome": result.replayed_outcome,
        "ruleset": result.ruleset,
        "differences": result.differences,
        "later_decisions": later,
    }


@router.get(
    "/applications/{case_id}/access-log",
    response_model=AccessLogOut,
    responses=PROBLEMS,
    summary="Every registry query made for the case: registry, purpose, time, result",
)
async def read_access_log(case_id: str, client: Reader, container: ContainerDep) -> Any:
    await case_in_scope(container.uow, client, case_id)
    rows = await container.database.run_in_thread(access_log.for_case, case_id)
    return {
        "case_id": case_id,
        "items": [
            {
                "registry": r.registry,
                "query": r.query,
                "purpose": r.purpose,
                "queried_at": r.queried_at.isoformat(),
                "elapsed_ms": round(r.elapsed_ms, 3),
                "status": r.status,
                "attempts": r.attempts,
                "requested_by": (
                    {"role": r.role, "name": r.name}
                    if r.requested_by
                    else {"role": "system", "name": "miaopi"}
                ),
            }
            for r in rows
        ],
        "next_cursor": None,
    }

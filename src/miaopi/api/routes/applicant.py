"""The applicant's own view (policy §11): the case id and the access code, no account."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from miaopi.api.deps import ContainerDep, Submitter
from miaopi.api.errors import invalid
from miaopi.api.presenters import applicant_view_body
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.usecases.errors import NotFound

router = APIRouter(prefix="/v1", tags=["applicant"], route_class=StrictJsonRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 413, 422, 429)
}
# What new_access_code makes (token_urlsafe): anything else cannot be a code.
CODE_PATTERN = r"^[A-Za-z0-9_-]{20,64}$"
ACCESS_CODE_SCHEMA = {"type": "string", "minLength": 20, "maxLength": 64, "pattern": CODE_PATTERN}
AccessCode = Annotated[
    str,
    Header(
        alias="X-Access-Code", min_length=20, max_length=64, pattern=CODE_PATTERN,
        description="The case's access code, as its submitter passed it on",
    ),
]  # fmt: skip


def access_code(value: str) -> str:
    """The header's value if it can be a code; a 422 naming it otherwise."""
    if re.fullmatch(CODE_PATTERN, value) is None:
        raise invalid(["header", "X-Access-Code"], "not an access code: 20 to 64 characters "
                      "of A-Z, a-z, 0-9, - and _")  # fmt: skip
    return value


class ClientOut(BaseModel):
    name: str
    role: str = Field(description="employer | channel | admin | … ; system: miaopi itself")


class QueryOut(BaseModel):
    registry: str
    query: str
    purpose: str = Field(description="decision | second_try | recheck | dry_run")
    client: ClientOut
    for_this_case: bool = Field(description="false: a dry run on the applicant's ID number")
    queried_at: str
    status: str


class ApplicantCaseOut(BaseModel):
    case_id: str
    status: str
    business_type: str
    approval_number: str | None
    applicant: dict[str, str] = Field(description="The name, masked")
    employer: dict[str, str | None]
    submitted_at: str
    stages: list[dict[str, Any]]
    registry_queries: list[QueryOut]


class AccessCodeOut(BaseModel):
    case_id: str
    access_code: str = Field(description="Shown this once: pass it on to the applicant")


async def applicant_case(request: Request, container: Any, case_id: str, code: str) -> Any:
    """The case the code opens. Wrong codes are limited per address, and refused before the
    code is judged once the limit is reached; a wrong code is answered as an unknown case."""
    host = request.client.host if request.client else "unknown"
    limiter = request.app.state.wrong_code_limiter
    limiter.check(host)
    try:
        return await container.applicants.case(case_id, code)
    except NotFound:
        limiter.take(host)
        raise


@router.get(
    "/applicant/cases/{case_id}",
    response_model=ApplicantCaseOut,
    responses=PROBLEMS,
    summary="The applicant's own case: status, stages, and every registry query about them",
)
async def read_own_case(
    case_id: str, code: AccessCode, request: Request, container: ContainerDep
) -> Any:
    row = await applicant_case(request, container, case_id, code)
    return applicant_view_body(await container.applicants.view(row))


@router.post(
    "/applications/{case_id}/access-code",
    status_code=201,
    response_model=AccessCodeOut,
    responses=PROBLEMS,
    summary="Issue a new access code for the applicant; the one before stops working",
)
async def issue_access_code(case_id: str, client: Submitter, container: ContainerDep) -> Any:
    code = await container.applicants.issue_code(client, case_id)
    return {"case_id": case_id, "access_code": code}

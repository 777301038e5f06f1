"""The public notice (policy §11 核准公示): no account, nothing personal beyond a masked name."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from miaopi.api.deps import ContainerDep
from miaopi.api.errors import invalid
from miaopi.api.fields import BusinessTypeName, InputModel, IsoDate
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/public", tags=["public notice"], route_class=StrictJsonRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (404, 409, 413, 422, 429)
}
NUMBER = r"^[0-9A-Za-z]{1,16}-[0-9]{4}-[0-9]{6}$"  # an approval number
ApprovalNumber = Annotated[
    str, Path(pattern=NUMBER, description="The notice's id: the approval number")
]


FromDay = Annotated[IsoDate | None, Query(alias="from", description="Approved on or after")]


class NoticeOut(BaseModel):
    notice_id: str = Field(description="The approval number")
    business_type: str
    business_type_title: dict[str, str] = Field(description="zh and en")
    name: str = Field(description="Surname and masked given name")
    employer: dict[str, str | None]
    approved_on: date
    objections_until: date = Field(description="The last day of the notice (5 working days)")


class NoticeList(BaseModel):
    items: list[NoticeOut]
    next_cursor: str | None


class ObjectionIn(InputModel):
    reason: str = Field(min_length=10, max_length=2000,
                        description="What is wrong with the approval, in words")  # fmt: skip


class ObjectionOut(BaseModel):
    objection_id: str
    status: str = Field(description="received: an auditor from another district looks into it")
    looked_into_by: date = Field(description="The counter's time limit, in working days")


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get(
    "/notices",
    response_model=NoticeList,
    responses=PROBLEMS,
    summary="Approvals in their notice period (核准公示), masked, newest first",
)
async def list_notices(
    request: Request,
    response: Response,
    container: ContainerDep,
    from_: FromDay = None,
    to: Annotated[IsoDate | None, Query(description="Approved on or before")] = None,
    business_type: BusinessTypeName | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=NUMBER,
                                        description="next_cursor of the previous page")] = None,
) -> Any:  # fmt: skip
    request.app.state.public_limiter.take(("notices", _address(request)))
    if business_type is not None and business_type not in container.rulebook.business_types():
        raise invalid(["query", "business_type"], "no rule file defines this business type")
    if from_ is not None and to is not None and to < from_:
        raise invalid(["query", "to"], "must not be before from")
    found, next_cursor = await container.notices.page(
        from_day=from_, to_day=to, business_type=business_type, cursor=cursor, limit=limit
    )
    response.headers["Cache-Control"] = "public, max-age=60"
    return {
        "items": [
            {
                "notice_id": n.notice_id,
                "business_type": n.business_type,
                "business_type_title": container.rulebook.title(n.business_type),
                "name": n.name,
                "employer": {"uscc": n.employer_uscc, "name": n.employer_name},
                "approved_on": n.approved_on,
                "objections_until": n.objections_until,
            }
            for n in found
        ],
        "next_cursor": next_cursor,
    }


@router.post(
    "/notices/{notice_id}/objections",
    status_code=202,
    response_model=ObjectionOut,
    responses=PROBLEMS,
    summary="Object to an approval on notice (异议): no account, a reason required",
)
async def file_objection(
    notice_id: ApprovalNumber, body: ObjectionIn, request: Request, container: ContainerDep
) -> Any:
    address = _address(request)
    request.app.state.public_limiter.take(("objection", address))
    # Objections recorded are limited tighter, per address: a flood cannot bury an auditor.
    objection_id, due = await container.notices.object(
        notice_id, body.reason, address,
        before_recording=lambda: request.app.state.objection_limiter.take(address),
    )  # fmt: skip
    return {"objection_id": objection_id, "status": "received", "looked_into_by": due}

"""The authority's figures (policy §12): ``GET /v1/stats``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from miaopi.api.deps import ContainerDep, Supervisor
from miaopi.api.errors import invalid
from miaopi.api.fields import IsoDate
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import stats

router = APIRouter(prefix="/v1", tags=["reports"], route_class=StrictJsonRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 422, 429)
}
MAX_DAYS = 366
FromDay = Annotated[IsoDate | None, Query(alias="from", description="First application day")]


class StatsOut(BaseModel):
    period: dict[str, str] = Field(description="from and to, inclusive application days")
    group_by: str | None
    totals: dict[str, Any] = Field(
        description="applications; first_decision; status_now; approved_by_second_try; "
        "approved_without_a_person; instant_approval_rate; time_to_decision_s {p50, p95}; "
        "reviews {opened, closed, approved, rejected, open, overdue, time_s {p50, p95}}; "
        "audits by kind {drawn, closed, open, overdue}; revocations; certificates_verified; "
        "households_registered"
    )
    groups: list[dict[str, Any]] = Field(description="The same figures per group, with its key")
    referral_reasons: list[dict[str, Any]] = Field(description="criterion and count, top 10")
    per_day: list[dict[str, Any]] = Field(description="applications and outcomes per day")


@router.get(
    "/stats",
    response_model=StatsOut,
    responses=PROBLEMS,
    summary="The authority's figures for a period, by business type, district or employer",
)
async def read_stats(
    client: Supervisor,
    container: ContainerDep,
    from_: FromDay = None,
    to: Annotated[IsoDate | None, Query(description="Last application day")] = None,
    group_by: Literal["business_type", "district", "employer"] | None = None,
) -> Any:
    del client  # the admin and auditors: the figures name no person
    today = today_in_shanghai(container.clock())
    last = to or today
    first = from_ or last - timedelta(days=29)
    if last < first:
        raise invalid(["query", "to"], "must not be before from")
    if (last - first).days >= MAX_DAYS:
        raise invalid(["query", "from"], f"a period is at most {MAX_DAYS} days")
    found = await container.database.run_in_thread(stats.figures, first, last, group_by, today)
    groups = sorted(found["groups"].items(), key=lambda kv: (-kv[1]["applications"], kv[0]))
    return {
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "group_by": group_by,
        "totals": found["totals"],
        "groups": [{"key": k, **v} for k, v in groups],
        "referral_reasons": found["referral_reasons"],
        "per_day": found["per_day"],
    }

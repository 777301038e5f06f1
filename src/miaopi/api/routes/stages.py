"""The stages after an approval (policy §11): the household registered, entitlements paid."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from miaopi.api.deps import ContainerDep, allow
from miaopi.api.fields import InputModel, Printable, StrictResidentId
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.records.clients import Client
from miaopi.usecases import stages

router = APIRouter(prefix="/v1", tags=["after the approval"], route_class=StrictJsonRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 413, 422, 429)
}
Registrar = Annotated[Client, Depends(allow("registrar"))]
Finance = Annotated[Client, Depends(allow("finance"))]


class RegistrationIn(InputModel):
    approval_number: str = Field(pattern=r"^[0-9]{4}-[0-9]{4}-[0-9]{6}$", max_length=32)
    id_number: StrictResidentId = Field(description="As on the identity card")
    registered_on: date
    police_station: Printable = Field(min_length=1, max_length=100)


class PaymentIn(InputModel):
    amount_cny: int = Field(gt=0, le=10_000_000, strict=True)
    paid_on: date
    reference: Printable = Field(min_length=1, max_length=100)


class StageOut(BaseModel):
    case_id: str
    stage_id: str
    stage: str


@router.post(
    "/registrations",
    response_model=StageOut,
    status_code=201,
    responses=PROBLEMS,
    summary="The household registered (入户) against an approval number, once",
)
async def register(body: RegistrationIn, registrar: Registrar, container: ContainerDep) -> Any:
    case_id, stage_id = await stages.register_household(
        container.database, registrar, approval_number=body.approval_number,
        id_number=body.id_number, registered_on=body.registered_on,
        police_station=body.police_station, now=container.clock(),
    )  # fmt: skip
    return {"case_id": case_id, "stage_id": stage_id, "stage": "household_registered"}


@router.post(
    "/applications/{case_id}/entitlements/{entitlement_id}/payments",
    response_model=StageOut,
    status_code=201,
    responses=PROBLEMS,
    summary="An entitlement (免申即享) paid, once",
)
async def pay(
    case_id: str, entitlement_id: str, body: PaymentIn, finance: Finance, container: ContainerDep
) -> Any:
    stage_id = await stages.record_payment(
        container.database, finance, case_id=case_id, entitlement_id=entitlement_id,
        amount_cny=body.amount_cny, paid_on=body.paid_on, reference=body.reference,
        now=container.clock(),
    )  # fmt: skip
    return {"case_id": case_id, "stage_id": stage_id, "stage": "entitlement_paid"}

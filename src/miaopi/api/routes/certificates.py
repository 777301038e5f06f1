"""Certificates (policy §11): an approved case's certificate, the public keys, the signed
revocation list, and verification for anyone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from miaopi.api.deps import ContainerDep, EvaluatorOrApplicant
from miaopi.api.errors import Problem
from miaopi.api.fields import InputModel, StrictResidentId
from miaopi.api.routes.applicant import ACCESS_CODE_SCHEMA, access_code, applicant_case
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.certificates import pdf

router = APIRouter(prefix="/v1", tags=["certificates"], route_class=StrictJsonRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 413, 422, 429, 503)
}


class CertificateOut(BaseModel):
    token: str = Field(description="JWS compact serialization (EdDSA, kid in the header)")
    approval_number: str
    kid: str
    issued_at: str


class VerifyIn(InputModel):
    # The token as sent: a length is checked on what was sent, not on what stripping leaves.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    token: str = Field(min_length=20, max_length=8000)
    id_number: StrictResidentId | None = Field(
        default=None, description="From the identity card: does the certificate bind it?"
    )


class VerifyOut(BaseModel):
    status: str = Field(description="valid | revoked | invalid")
    approval_number: str | None = None
    business_type: str | None = None
    name: str | None = Field(default=None, description="Masked")
    decided_on: str | None = None
    expires_on: str | None = None
    id_number_matches: bool | None = None


class RevocationsOut(BaseModel):
    token: str = Field(description="The revoked approval numbers, signed as a certificate is")
    issued_at: str


def wants_pdf(request: Request) -> bool:
    """``Accept: application/pdf`` preferred to JSON (a JSON or wildcard accept gets JSON)."""
    accept = request.headers.get("accept", "")
    return "application/pdf" in accept and "json" not in accept and "*/*" not in accept


async def certificate_answer(request: Request, container: Any, found: Any) -> Any:
    """The certificate as the caller asked for it: the PDF, or the token as JSON."""
    if not wants_pdf(request):
        return {"token": found.token, "approval_number": found.approval_number,
                "kid": found.kid, "issued_at": found.issued_at.isoformat()}  # fmt: skip
    try:
        content = await container.certificates.printed(found)
    except pdf.FontMissing as exc:
        raise Problem(503, f"the certificate cannot be printed here: {exc}; the JSON token "
                      "is available", slug="cannot-print") from None  # fmt: skip
    return Response(
        content, media_type="application/pdf",
        headers={"Content-Disposition":
                 f'inline; filename="certificate-{found.approval_number}.pdf"',
                 "Cache-Control": "private, no-store"},
    )  # fmt: skip


@router.get(
    "/applications/{case_id}/certificate",
    response_model=CertificateOut,
    responses={**PROBLEMS, 200: {"content": {"application/pdf": {}}}},
    summary="An approved case's certificate (准予人才引进通知): the token, or the PDF",
    description="`Accept: application/pdf` gives the printable A4 certificate whose QR code "
    "holds the token; otherwise the token as JSON. Signed once, when first asked for. The "
    "applicant sends the case's access code (`X-Access-Code`) instead of an API key.",
    # Declared by hand: a header FastAPI takes as optional is documented as nullable, and a
    # "null" would then be a well-formed code.
    openapi_extra={"parameters": [{
        "name": "X-Access-Code", "in": "header", "required": False,
        "description": "The applicant's access code, instead of an API key",
        "schema": ACCESS_CODE_SCHEMA,
    }]},
)
async def read_certificate(
    case_id: str,
    request: Request,
    client: EvaluatorOrApplicant,
    container: ContainerDep,
) -> Any:
    if client is not None:
        found = await container.certificates.certificate(client, case_id)
    else:  # the applicant, with the case's access code
        code = access_code(request.headers["x-access-code"])
        row = await applicant_case(request, container, case_id, code)
        found = await container.certificates.issued(case_id, row.status)
    return await certificate_answer(request, container, found)


@router.get(
    "/certificates/keys",
    summary="The signing keys as a JWKS (RFC 7517): the one in use and every retired one",
)
async def keys(container: ContainerDep, response: Response) -> Any:
    response.headers["Cache-Control"] = "public, max-age=300"
    return await container.certificates.jwks()


@router.get(
    "/certificates/revocations",
    response_model=RevocationsOut,
    summary="The revoked approval numbers, signed, with the time of issue",
)
async def revocations(container: ContainerDep) -> Any:
    token, issued_at = await container.certificates.revocations()
    return {"token": token, "issued_at": issued_at.isoformat()}


@router.post(
    "/certificates/verify",
    response_model=VerifyOut,
    response_model_exclude_none=True,
    responses=PROBLEMS,
    summary="Verify a certificate (no account): valid, revoked or invalid",
)
async def verify(body: VerifyIn, request: Request, container: ContainerDep) -> Any:
    host = request.client.host if request.client else "unknown"
    request.app.state.public_limiter.take(("verify", host))
    verdict = await container.certificates.verify(body.token, body.id_number)
    return verdict.public()

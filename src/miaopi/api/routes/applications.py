"""Applications: decide now and record (POST), read back within scope (GET), dry runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from miaopi.api.deps import ContainerDep, Cursor, Evaluator, Reader, Submitter, Supervisor, scope_of
from miaopi.api.errors import Problem, invalid
from miaopi.api.presenters import case_body, evaluation_body
from miaopi.api.schemas import (
    AccessLogOut,
    ApplicationIn,
    CaseList,
    CaseOut,
    EvaluationIn,
    EvaluationResultOut,
    ProblemOut,
    ReplayOut,
)
from miaopi.decision.replay import TamperedRuleset, replay
from miaopi.decision.service import Decision, NoRulesInForce
from miaopi.domain import Application, BusinessType, CaseStatus
from miaopi.eligibility.model import canonical_json
from miaopi.records import access_log, cases, db
from miaopi.records.cases import IdempotencyRace, NewCase
from miaopi.records.clients import Client
from miaopi.records.paging import new_id
from miaopi.records.sealing import key_of
from miaopi.telemetry import observe_decision

router = APIRouter(prefix="/v1", tags=["applications"])

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

_REQUIRED_CLAIMS: dict[str, tuple[str, ...]] = {
    "graduate": ("diploma_no",),
    "overseas_returnee": ("certification_no",),
}


def _to_application(body: ApplicationIn, client: Client) -> Application:
    if client.role == "employer" and body.employer.uscc != client.uscc:
        raise Problem(403, "an employer may only apply for its own USCC", slug="forbidden")
    for claim in _REQUIRED_CLAIMS.get(body.business_type, ()):
        if getattr(body.claims, claim) is None:
            raise invalid(["body", "claims", claim], f"required for {body.business_type}")
    if body.business_type == "in_service" and not (
        body.claims.diploma_no or body.claims.title_certificate_no
    ):
        raise invalid(
            ["body", "claims", "diploma_no"],
            "in_service needs diploma_no or title_certificate_no",
        )
    claims = {k: v for k, v in body.claims.model_dump().items() if v is not None}
    return Application(
        business_type=body.business_type,
        applicant_name=body.applicant.name,
        id_number=body.applicant.id_number,
        employer_uscc=body.employer.uscc,
        claims=claims,
        commitment_version=body.commitment.version,
    )


async def _decide(container: ContainerDep, application: Application, as_of: Any = None) -> Decision:
    try:
        return await container.decider.decide(application, as_of)
    except NoRulesInForce as exc:
        loc = ["body", "as_of"] if as_of else ["body", "business_type"]
        raise invalid(loc, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class _BodyHash:
    """What an Idempotency-Key records of the body, to tell a retry from a different body."""

    canonical: bytes
    keyed: str

    @classmethod
    def of(cls, body: ApplicationIn, database: Engine) -> _BodyHash:
        canonical = canonical_json(body.model_dump(mode="json"))
        return cls(canonical, key_of(database.dialect).body_hash(canonical))

    def matches(self, recorded: str) -> bool:
        # Keys recorded before the hash was keyed hold the body's plain SHA-256.
        return recorded == self.keyed or recorded == hashlib.sha256(self.canonical).hexdigest()


async def _case_in_scope(container: ContainerDep, client: Client, case_id: str) -> Any:
    """The case, if the client may see it; 404 otherwise, never revealing that it exists."""
    row = await db.run(container.db, cases.get, case_id, scope_of(client))
    if row is None:
        raise Problem(404, "case not found")
    return row


async def _replay_if_seen(
    container: ContainerDep, client: Client, key: str, body_hash: _BodyHash
) -> JSONResponse | None:
    """The case already recorded under this key, or None; 422 if the body differs."""
    seen = await db.run(container.db, cases.find_idempotent, client.id, key)
    if seen is None:
        return None
    if not body_hash.matches(seen[0]):
        raise Problem(
            422,
            "this Idempotency-Key was used with a different body",
            slug="idempotency-key-reused",
            errors=[{"loc": ["header", "idempotency-key"], "msg": "reused with a different body"}],
        )
    row = await _case_in_scope(container, client, seen[1])
    # Through the response model, like the first answer, so a replay is the same JSON.
    replayed = CaseOut.model_validate(case_body(row, client)).model_dump(mode="json")
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
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, description="Replays the same case")
    ] = None,
) -> Any:
    application = _to_application(body, client)
    body_hash = _BodyHash.of(body, container.db)
    if idempotency_key is not None:
        replay = await _replay_if_seen(container, client, idempotency_key, body_hash)
        if replay is not None:
            return replay

    decision = await _decide(container, application)
    observe_decision(decision, "case")
    new = NewCase(
        status=decision.outcome,
        business_type=application.business_type,
        applicant_name=application.applicant_name,
        applicant_id_number=application.id_number,
        employer_uscc=application.employer_uscc,
        employer_name=decision.employer_name,
        submitted_by=client.id,
        application_date=decision.application_date,
        ruleset_fingerprint=decision.ruleset.fingerprint,
        ruleset_definition=decision.ruleset.definition,
        ruleset_version=decision.ruleset.version,
        request=application.to_json(),
        decision=decision.decision_json(),
        evidence=decision.evidence_json(),
        submitted_at=decision.submitted_at,
        decided_at=decision.decided_at,
        elapsed_ms=decision.elapsed_ms,
        risk_class=decision.risk_class,
        employer_region=decision.employer_region,
        supervision=decision.ruleset.supervision,
    )
    idem = (client.id, idempotency_key, body_hash.keyed) if idempotency_key else None
    try:
        row = await db.run(container.db, cases.record, new, container.settings.city_prefix, idem)
    except IdempotencyRace:
        # A concurrent request with the same key committed first: answer with its case.
        # (Only raised when a key was given.)
        replay = await _replay_if_seen(container, client, str(idempotency_key), body_hash)
        if replay is None:  # pragma: no cover - the race guarantees the key is recorded
            raise
        return replay
    response.headers["Location"] = f"/v1/applications/{row.id}"
    return case_body(row, client)


@router.post(
    "/evaluations",
    response_model=EvaluationResultOut,
    responses=DECIDING_PROBLEMS,
    summary="Dry run: decide without recording a case (its registry queries are logged)",
)
async def dry_run(body: EvaluationIn, client: Evaluator, container: ContainerDep) -> Any:
    application = _to_application(body, client)
    decision = await _decide(container, application, body.as_of)
    observe_decision(decision, "dry_run")
    evaluation_id = new_id()
    # A dry run records no case, but the queries it made about a person are logged all the same.
    await db.run(
        container.db,
        access_log.record_queries,
        decision.evidence_json(),
        "dry_run",
        requested_by=client.id,
        evaluation_id=evaluation_id,
    )
    return {"evaluation_id": evaluation_id, **evaluation_body(decision, client)}


@router.get(
    "/applications/{case_id}",
    response_model=CaseOut,
    responses=PROBLEMS,
    summary="One case, within the caller's scope",
)
async def read(case_id: str, client: Reader, container: ContainerDep) -> Any:
    row = await _case_in_scope(container, client, case_id)
    return case_body(row, client)


@router.get(
    "/applications",
    response_model=CaseList,
    responses=PROBLEMS,
    summary="Cases within the caller's scope, newest first",
)
async def list_cases(
    client: Reader,
    container: ContainerDep,
    status: CaseStatus | None = None,
    business_type: BusinessType | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    rows, next_cursor = await run_in_threadpool(
        cases.page, container.db, scope_of(client), limit, cursor, status, business_type
    )
    return {"items": [case_body(r, client) for r in rows], "next_cursor": next_cursor}


@router.post(
    "/applications/{case_id}/replay",
    response_model=ReplayOut,
    responses=PROBLEMS,
    summary="Re-evaluate the recorded evidence under the recorded rule version",
)
async def replay_case(case_id: str, client: Supervisor, container: ContainerDep) -> Any:
    row = await _case_in_scope(container, client, case_id)
    definition = await run_in_threadpool(
        cases.ruleset_definition, container.db, row.ruleset_fingerprint
    )
    if definition is None:
        raise Problem(409, "the rule version this case used is not stored", slug="ruleset-missing")
    try:
        # On the event loop: durable-rules must not run in a threadpool.
        result = replay(
            container.rule_engine,
            definition,
            row.ruleset_fingerprint,
            row.request,
            row.application_date,
            row.evidence,
            row.decision,
        )
    except TamperedRuleset:
        raise Problem(
            409,
            "the stored rule version no longer matches the fingerprint this case recorded",
            slug="ruleset-tampered",
        ) from None
    return {
        "case_id": row.id,
        "identical": result.identical,
        "recorded_outcome": result.recorded_outcome,
        "replayed_outcome": result.replayed_outcome,
        "ruleset": result.ruleset,
        "differences": result.differences,
    }


@router.get(
    "/applications/{case_id}/access-log",
    response_model=AccessLogOut,
    responses=PROBLEMS,
    summary="Every registry query made for the case: registry, purpose, time, result",
)
async def read_access_log(case_id: str, client: Reader, container: ContainerDep) -> Any:
    await _case_in_scope(container, client, case_id)
    rows = await run_in_threadpool(access_log.for_case, container.db, case_id)
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

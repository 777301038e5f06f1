"""Case and decision bodies as the API shows them, with personal data masked by role."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from miaopi.decision.service import Decision
from miaopi.eligibility.ruleset import RuleBook
from miaopi.masking import mask_id, mask_name
from miaopi.records.clients import Client
from miaopi.usecases.applicant import ApplicantView
from miaopi.usecases.stages import base_stages


def sees_personal_data(client: Client) -> bool:
    # An auditor's scope is the cases of their own tasks, so whatever they can read is assigned.
    return client.role in ("admin", "auditor")


def _applicant(name: str, id_number: str, client: Client) -> dict[str, str]:
    if sees_personal_data(client):
        return {"name": name, "id_number": id_number}
    return {"name": mask_name(name), "id_number": mask_id(id_number)}


_EVIDENCE = ("registry", "query", "status", "reference", "queried_at", "elapsed_ms")


def _evidence(items: list[dict[str, Any]], *more: str) -> list[dict[str, Any]]:
    """Evidence as shown; ``more`` adds fields (registry answers, for an assigned auditor)."""
    return [{k: e.get(k) for k in (*_EVIDENCE, *more)} for e in items]


def evaluation_body(decision: Decision, client: Client) -> dict[str, Any]:
    app = decision.application
    return {
        "business_type": app.business_type,
        "applicant": _applicant(app.applicant_name, app.id_number, client),
        "employer": {"uscc": app.employer_uscc, "name": decision.employer_name},
        "decision": decision.decision_json(),
        "evidence": _evidence(decision.evidence_json()),
        "submitted_at": decision.submitted_at.isoformat(),
        "decided_at": decision.decided_at.isoformat(),
        "elapsed_ms": round(decision.elapsed_ms, 3),
    }


def case_body(row: Any, client: Client) -> dict[str, Any]:
    return {
        "case_id": row.id,
        "status": row.status,
        "business_type": row.business_type,
        "approval_number": row.approval_number,
        "applicant": _applicant(row.applicant_name, row.applicant_id_number, client),
        "employer": {"uscc": row.employer_uscc, "name": row.employer_name},
        "decision": row.decision,
        "evidence": _evidence(row.evidence),
        "submitted_at": row.submitted_at.isoformat(),
        "decided_at": row.decided_at.isoformat(),
        "elapsed_ms": round(row.elapsed_ms, 3),
        "revocation": (
            {"revoked_at": row.revoked_at.isoformat(), "reason": row.revocation_reason}
            if row.revoked_at
            else None
        ),
        "stages": base_stages(row),
        # Only in the answer to the submission (the case as just recorded): stored as a hash.
        "access_code": getattr(row, "access_code", None),
    }


def audited_case_body(row: Any, history: list[Any], client: Client) -> dict[str, Any]:
    """The whole case for its auditor: registry answers included, and what happened to it."""
    body = case_body(row, client)
    body["evidence"] = _evidence(row.evidence, "record", "detail")
    body["history"] = [
        {"at": e.at.isoformat(), "event": e.event, "status": e.status, "detail": e.detail}
        for e in history
    ]
    return body


def task_body(row: Any, today: date) -> dict[str, Any]:
    findings = row.findings
    return {
        "task_id": row.id,
        "case_id": row.case_id,
        "kind": row.kind,
        "status": row.status,
        "due_date": row.due_date.isoformat(),
        "overdue": row.status != "closed" and row.due_date < today,
        "created_at": row.created_at.isoformat(),
        "assigned_at": row.assigned_at.isoformat() if row.assigned_at else None,
        "auditor": (
            {"name": row.auditor_name, "district": row.auditor_district} if row.auditor_id else None
        ),
        "period": row.period,
        "discrepancy": row.discrepancy,
        "findings": (
            {k: findings[k] for k in ("completeness", "consistency", "compliance", "notes")}
            if findings
            else None
        ),
        "outcome": row.outcome,
        "reason": row.reason,
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "case": {
            "business_type": row.business_type,
            "status": row.case_status,
            "approval_number": row.approval_number,
            "employer": {"uscc": row.employer_uscc, "name": row.employer_name},
            "approved_at": row.approved_at.isoformat(),
        },
    }


def document_request(review: Any, answered: Iterable[int]) -> dict[str, Any] | None:
    """The review's one-time notice, with the items a document answers so far."""
    if review.document_request is None:
        return None
    return {
        "items": review.document_request,
        "requested_at": review.documents_requested_at.isoformat(),
        "answered": sorted(set(answered)),
    }


def review_body(row: Any, today: date, answered: Iterable[int] = ()) -> dict[str, Any]:
    """A counter review for officers and admins (its case in summary)."""
    return {
        "review_id": row.id,
        "case_id": row.case_id,
        "status": row.status,
        "referred_on": row.referred_on.isoformat(),
        "due_date": row.due_date.isoformat() if row.due_date else None,
        "overdue": _overdue(row, today),
        "officer": row.officer_name,
        "claimed_at": row.claimed_at.isoformat() if row.claimed_at else None,
        "outcome": row.outcome,
        "approval_number": row.approval_number,
        "reason": row.reason,
        "resolutions": row.resolutions,
        "entitlements": row.entitlements,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "document_request": document_request(row, answered),
        "case": {
            "case_id": row.case_id,
            "status": row.case_status,
            "business_type": row.business_type,
            "employer_uscc": row.employer_uscc,
            "employer_name": row.employer_name,
        },
    }


def with_later_decisions(
    body: dict[str, Any],
    tries: Iterable[Any],
    review: Any | None,
    client: Client,
    today: date,
    answered: Iterable[int] = (),
) -> dict[str, Any]:
    """A referred case's body with what came after its first decision (policy §9): every
    decision in order (second tries, the counter's), the second try still to come, the
    review, and the approval number a later decision gave."""
    decisions = [{"by": "miaopi", "outcome": body["decision"]["outcome"],
                  "decided_at": body["decided_at"]}]  # fmt: skip
    for attempt in tries:
        if attempt.status == "scheduled":
            body["second_try"] = {"attempt": attempt.attempt, "due_at": attempt.due_at.isoformat()}
            continue
        decisions.append({
            "by": "second try", "attempt": attempt.attempt, "outcome": attempt.outcome,
            "decided_at": attempt.decided_at.isoformat(),
            "entitlements": attempt.decision["entitlements"],
        })  # fmt: skip
        if attempt.approval_number:
            body["approval_number"] = attempt.approval_number
    body["decisions"] = decisions
    if review is not None:
        with_review(body, review, client, today, answered)
    return body


def with_review(
    body: dict[str, Any], review: Any, client: Client, today: date, answered: Iterable[int] = ()
) -> dict[str, Any]:
    """A case's body with its counter review: the review, the decision it made, its number,
    and the documents it asks the submitter for."""
    notes = client.role == "admin"  # an officer's notes may name the applicant
    resolutions = review.resolutions
    if resolutions is not None and not notes:
        resolutions = [{**r, "note": None} for r in resolutions]
    body["review"] = {
        "review_id": review.id,
        "status": review.status,
        "due_date": review.due_date.isoformat() if review.due_date else None,
        "overdue": _overdue(review, today),
        "officer": review.officer_name,
        "outcome": review.outcome,
        "reason": review.reason if notes else None,
        "resolutions": resolutions,
        "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        "document_request": document_request(review, answered),
    }
    decisions = body["decisions"]
    if review.status == "closed":
        decisions.append({
            "by": "counter review", "outcome": review.outcome, "review_id": review.id,
            "decided_at": review.decided_at.isoformat(), "entitlements": review.entitlements,
        })  # fmt: skip
        if review.approval_number:
            body["approval_number"] = review.approval_number
    return body


def _overdue(review: Any, today: date) -> bool:
    return review.status != "closed" and review.due_date is not None and review.due_date < today


def in_language(body: dict[str, Any], rulebook: RuleBook, lang: str) -> dict[str, Any]:
    """The body with its criteria described in ``lang`` (zh or en), as the rule files word
    them; a criterion the files no longer hold keeps the words it was decided with."""
    decision = body.get("decision")
    if lang != "zh" or not decision:
        return body
    descriptions = rulebook.descriptions(str(body.get("business_type", "")))
    criteria = [
        {**c, "description": descriptions.get(c["id"], {}).get("zh") or c["description"]}
        for c in decision.get("criteria", [])
    ]
    return {**body, "decision": {**decision, "criteria": criteria}}


def applicant_view_body(view: ApplicantView) -> dict[str, Any]:
    """What the applicant is shown: nothing the code's finder could misuse (the name masked,
    no ID number), and every query about them with who asked, which registry, why and when."""
    row = view.case
    return {
        "case_id": row.id,
        "status": row.status,
        "business_type": row.business_type,
        "approval_number": view.approval_number,
        "applicant": {"name": mask_name(row.applicant_name)},
        "employer": {"uscc": row.employer_uscc, "name": row.employer_name},
        "submitted_at": row.submitted_at.isoformat(),
        "stages": view.stages,
        "registry_queries": [
            {
                "registry": q.registry,
                "query": q.query,
                "purpose": q.purpose,
                "client": (
                    {"name": q.client_name, "role": q.client_role}
                    if q.client_role is not None
                    else {"name": "miaopi", "role": "system"}
                ),
                "for_this_case": q.case_id == row.id,
                "queried_at": q.queried_at.isoformat(),
                "status": q.status,
            }
            for q in view.queries
        ],
    }

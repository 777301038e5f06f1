"""The counter review (policy §9): an officer takes a referred case and decides it.

The officer resolves each criterion that was ``unknown`` or failed in ``refer`` mode, saying
what the resolution rests on; a criterion that failed in ``reject`` mode can never be
overridden. An approval is a full decision: an approval number, the entitlements the recorded
evidence gives, a ledger entry naming the officer, and a spot check at rate 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from miaopi.decision.replay import TamperedRuleset, stored_ruleset
from miaopi.decision.service import judge
from miaopi.domain import Application
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.engine import RuleEngine
from miaopi.evidence.ports import Evidence
from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.records.live_approvals import LiveApprovalHeld, live_expired_on
from miaopi.records.reviews import Recused, ReviewClosed, ReviewNotFound, ReviewNotHeld, ReviewTaken
from miaopi.usecases.errors import Conflict, Forbidden, InvalidInput, NotFound
from miaopi.usecases.unit_of_work import UnitOfWork

Outcome = Literal["approved", "rejected"]
_ALL = Scope("all")  # the officer holds the review: its case is theirs to see
Basis = Literal["document", "registry", "note"]


@dataclass(frozen=True, slots=True)
class Resolution:
    criterion: str
    result: Literal["pass", "fail"]
    basis: Basis
    document_id: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "result": self.result, "basis": self.basis,
                "document_id": self.document_id, "note": self.note}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    outcome: Outcome
    reason: str | None
    resolutions: tuple[Resolution, ...]


async def find_review(uow: UnitOfWork, review_id: str) -> Any:
    review = await uow.review(review_id)
    if review is None:
        raise NotFound("review not found")
    return review


async def claim(review_id: str, officer: Client, *, uow: UnitOfWork, now: datetime) -> Any:
    """Take a waiting review; the review as it then stands."""
    try:
        await uow.claim_review(
            review_id=review_id, officer_id=officer.id, district=officer.district, now=now
        )
    except ReviewNotFound:
        raise NotFound("review not found") from None
    except ReviewClosed:
        raise Conflict("review-closed", "this review is decided already") from None
    except ReviewTaken:
        raise Conflict("review-taken", "another officer has taken this review") from None
    except Recused:
        raise Conflict(
            "recused",
            "the employer is in your district and an officer of another district can take it",
        ) from None
    return await find_review(uow, review_id)


def to_resolve(criteria: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(criteria the officer must resolve, criteria that failed in reject mode)."""
    open_ = {
        c["id"]
        for c in criteria
        if c["result"] == "unknown" or (c["result"] == "fail" and c["on_fail"] == "refer")
    }
    final = {c["id"] for c in criteria if c["result"] == "fail" and c["on_fail"] == "reject"}
    return open_, final  # fmt: skip


_FINAL = "a criterion that failed in reject mode can never be overridden"
_NOT_OPEN = "only a criterion that was unknown or failed in refer mode is resolved"
_NO_DOCUMENT = "name a document uploaded for this case (document_id)"


def check_decision(
    decision: ReviewDecision,
    criteria: list[dict[str, Any]],
    documents: frozenset[str] = frozenset(),
) -> None:
    """``InvalidInput`` naming the field, unless the decision resolves exactly what it must;
    ``documents``: the ids of the case's documents, which a resolution may rest on."""
    open_, final = to_resolve(criteria)
    seen: set[str] = set()
    for i, r in enumerate(decision.resolutions):
        at: list[str | int] = ["body", "resolutions", i]
        if r.criterion in final:
            raise InvalidInput([*at, "criterion"], _FINAL)
        if r.criterion not in open_:
            raise InvalidInput([*at, "criterion"], _NOT_OPEN)
        if r.criterion in seen:
            raise InvalidInput([*at, "criterion"], "this criterion is resolved twice")
        seen.add(r.criterion)
        if r.basis == "document" and r.document_id not in documents:
            raise InvalidInput([*at, "document_id"], _NO_DOCUMENT)
        if r.basis != "document" and not (r.note or "").strip():
            raise InvalidInput([*at, "note"], "say what the resolution rests on")
    missing = sorted(open_ - seen)
    if missing:
        raise InvalidInput(["body", "resolutions"], f"resolve every open criterion: {missing}")
    failed = [r.criterion for r in decision.resolutions if r.result == "fail"]
    if decision.outcome == "approved" and failed:
        raise InvalidInput(["body", "outcome"], f"an approval with failed criteria: {failed}")
    if decision.outcome == "rejected" and not failed:
        raise InvalidInput(["body", "outcome"], "a rejection needs a criterion resolved as fail")
    if decision.outcome == "rejected" and not (decision.reason or "").strip():
        raise InvalidInput(["body", "reason"], "a rejection needs its reason")


async def decide(
    review_id: str,
    decision: ReviewDecision,
    officer: Client,
    *,
    uow: UnitOfWork,
    engine: RuleEngine,
    city_prefix: str,
    now: datetime,
) -> Any:
    """Decide one's own review (see the module); the review as it then stands."""
    review = await find_review(uow, review_id)
    if review.status == "closed":
        raise Conflict("review-closed", "this review is decided already")
    if review.officer_id != officer.id:
        raise Forbidden("only the officer who took this review decides it")
    case = await uow.case(review.case_id, _ALL)
    if case is None:  # pragma: no cover - a review's case is kept with it (a foreign key)
        raise NotFound("review not found")
    uploaded = frozenset(d.id for d in await uow.documents(review.case_id))
    check_decision(decision, case.decision["criteria"], uploaded)
    definition = await uow.ruleset_definition(case.ruleset_fingerprint)
    try:  # on the event loop's thread, as durable-rules requires
        ruleset = stored_ruleset(definition, case.ruleset_fingerprint)
    except TamperedRuleset:
        raise Conflict("ruleset-tampered", "the case's stored rule version was changed") from None
    entitlements: list[dict[str, Any]] = []
    if decision.outcome == "approved":
        application = Application.from_json(case.request)
        evidence = [Evidence.from_json(e) for e in case.evidence]
        judged = judge(engine, ruleset, application, case.application_date, evidence)
        entitlements = [{"id": i, "amount_cny": amount}
                        for i, amount in engine.entitled(ruleset, judged.facts)]  # fmt: skip
    today = today_in_shanghai(now)
    try:
        await uow.decide_review(
            review_id=review_id,
            officer_id=officer.id,
            outcome=decision.outcome,
            reason=decision.reason,
            resolutions=[r.to_json() for r in decision.resolutions],
            entitlements=entitlements,
            city_prefix=city_prefix,
            terms=ruleset.supervision,
            now=now,
            today=today,
            live_expired_on=live_expired_on(ruleset.parameters, today),
        )
    except LiveApprovalHeld as held:
        number = held.approval_number or "another case"
        raise Conflict(
            "live-approval",
            f"the person holds a live approval ({number}): one live approval per person",
        ) from None
    except ReviewClosed:
        raise Conflict("review-closed", "this review is decided already") from None
    except ReviewNotHeld:
        raise Forbidden("only the officer who took this review decides it") from None
    return await find_review(uow, review_id)

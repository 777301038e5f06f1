"""Submit an application: decide it now and record the case, once per Idempotency-Key."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from miaopi.decision.outcome import live_approval_held, outcome
from miaopi.decision.second_try import to_ask_again
from miaopi.decision.service import Decider, Decision
from miaopi.domain import Application
from miaopi.eligibility.calendar import CalendarError, WorkingCalendar
from miaopi.records.cases import IdempotencyRace, NewCase
from miaopi.records.clients import Client
from miaopi.records.live_approvals import LiveApprovalHeld, live_expired_on
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.applicant import new_access_code
from miaopi.usecases.applications import check_application
from miaopi.usecases.decide import decide
from miaopi.usecases.errors import IdempotencyKeyReused
from miaopi.usecases.unit_of_work import UnitOfWork

log = logging.getLogger("miaopi.reviews")
Schedule = tuple[int, ...]  # minutes after a referral (RuleBook.second_try_after_minutes)


@dataclass(frozen=True, slots=True)
class Submission:
    application: Application
    client: Client
    # The body as canonical JSON: an Idempotency-Key records its keyed hash, to tell a retry
    # from a different body.
    canonical_body: bytes
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    case: Any  # as stored
    replayed: bool  # the case an earlier request with the same key recorded


async def submit(
    submission: Submission,
    *,
    decider: Decider,
    uow: UnitOfWork,
    city_prefix: str,
    calendar: WorkingCalendar,
) -> Submitted:
    application = check_application(submission.application, submission.client, decider.rulebook)
    body_hash = uow.body_hash(submission.canonical_body)
    if submission.idempotency_key is not None:
        seen = await _seen(submission, body_hash, uow)
        if seen is not None:
            return seen
    decision = await decide(decider, application, "case")
    schedule = decider.rulebook.second_try_after_minutes
    key = submission.idempotency_key
    claim = (submission.client.id, key, body_hash) if key is not None else None
    try:
        try:
            new = _case(decision, submission, calendar, schedule)
            row = await uow.record(new, city_prefix, claim)
        except LiveApprovalHeld as held:
            # Approved at the same moment as another approval of the person's, which
            # committed first: this one is referred, naming it (policy §5).
            decision = live_approval_referral(decision, held.approval_number)
            new = _case(decision, submission, calendar, schedule)
            row = await uow.record(new, city_prefix, claim)
    except IdempotencyRace:
        # A concurrent request with the same key committed first: its case is the answer.
        seen = await _seen(submission, body_hash, uow)
        if seen is None:  # pragma: no cover - the race guarantees the key is recorded
            raise
        # This request asked the registries about the person too, and its transaction was
        # rolled back with its log of those queries: every query that left the service is on
        # record (policy §8), under the case it was asked for.
        await uow.log_queries(
            decision.evidence_json(),
            "decision",
            requested_by=submission.client.id,
            case_id=seen.case.id,
        )
        return seen
    return Submitted(row, replayed=False)


async def _seen(submission: Submission, body_hash: str, uow: UnitOfWork) -> Submitted | None:
    """The case already recorded under the submission's key, or None."""
    client, key = submission.client, str(submission.idempotency_key)
    seen = await uow.find_idempotent(client.id, key)
    if seen is None:
        return None
    # Keys recorded before the hash was keyed hold the body's plain SHA-256.
    if seen[0] not in (body_hash, hashlib.sha256(submission.canonical_body).hexdigest()):
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different body")
    return Submitted(await case_in_scope(uow, client, seen[1]), replayed=True)


def _case(
    decision: Decision, submission: Submission, calendar: WorkingCalendar, schedule: Schedule
) -> NewCase:
    if decision.outcome != "referred":
        return new_case(decision, submission.client.id)
    again = second_try_at(decision, schedule)
    due = None if again else review_due(calendar, decision.application_date)
    return new_case(decision, submission.client.id, due, again)


def second_try_at(decision: Decision, schedule: Schedule) -> datetime | None:
    """When a referral is decided again: only one owed to registries that did not answer."""
    if not schedule:
        return None
    criteria = [c.to_json() for c in decision.criteria]
    if to_ask_again(criteria, decision.evidence_json()) is None:
        return None
    return decision.decided_at + timedelta(minutes=schedule[0])


def live_approval_referral(decision: Decision, number: str | None) -> Decision:
    """The decision with ``no_live_approval`` failed, naming the approval that holds."""
    criteria = live_approval_held(decision.criteria, number)
    return replace(decision, criteria=criteria, outcome=outcome(criteria), entitlements=())


def review_due(calendar: WorkingCalendar, referred_on: date) -> date | None:
    try:
        return calendar.review_due(referred_on)
    except CalendarError as exc:
        # The case is recorded and queued all the same; its review shows no due date.
        log.error("no due date for a counter review: %s", exc)
        return None


def new_case(
    decision: Decision,
    submitted_by: int,
    review_due: date | None = None,
    second_try_at: datetime | None = None,
) -> NewCase:
    """The case to record for a decision."""
    application = decision.application
    return NewCase(
        status=decision.outcome,
        business_type=application.business_type,
        applicant_name=application.applicant_name,
        applicant_id_number=application.id_number,
        employer_uscc=application.employer_uscc,
        employer_name=decision.employer_name,
        submitted_by=submitted_by,
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
        review_due=review_due,
        second_try_at=second_try_at,
        access_code=new_access_code(),
        live_expired_on=(
            live_expired_on(decision.ruleset.parameters, decision.application_date)
            if decision.outcome == "approved"
            else None
        ),
    )

"""The automatic second try of a referral owed only to registries (policy.md §9).

A referred case whose every unknown criterion is unknown only because a registry did not
answer is decided again at the minutes ``rules/common.yaml`` gives after its referral. An
attempt asks again only the registries that failed (and this service's own records, which may
have changed since), keeps the rest of the recorded evidence, and judges under the case's own
rule version and application date. An approval or a rejection is the case's decision, recorded
as a new one (the first is never rewritten); a referral waits for the next attempt or, with
none left or none that could help, goes to the counter review, due from that day.

Several instances may run this: each takes an attempt with a lease before it asks anything,
and the attempt is recorded once (``second_tries.record``). Runs on the event loop, like
decisions, because it evaluates rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from miaopi.decision.outcome import live_approval_held, outcome
from miaopi.decision.replay import stored_ruleset
from miaopi.decision.second_try import to_ask_again
from miaopi.decision.service import judge
from miaopi.domain import Application
from miaopi.eligibility.calendar import WorkingCalendar
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.evaluate import CriterionOutcome
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.facts import CREDIT_EMPLOYER, REVOCATIONS_BARS_OF, Query, query_argument
from miaopi.evidence.gather import Registries
from miaopi.evidence.ports import Evidence
from miaopi.records import cases, second_tries
from miaopi.records.cases import Scope
from miaopi.records.database import Database
from miaopi.records.live_approvals import LiveApprovalHeld, live_expired_on
from miaopi.usecases.submit import review_due

log = logging.getLogger("miaopi.reviews")
# Far longer than an attempt takes (its registries' budgets): only an instance that died while
# it held an attempt leaves it to another, after this.
LEASE = timedelta(minutes=5)
_ALL = Scope("all")


@dataclass
class SecondTries:
    database: Database
    engine: RuleEngine
    registries: Registries
    rulebook: Callable[[], RuleBook]
    calendar: Callable[[], WorkingCalendar]
    city_prefix: str
    clock: Callable[[], datetime]

    async def run(self, limit: int = 100) -> int:
        """Decide the attempts that are due; how many were decided here."""
        now = self.clock()
        decided = 0
        for row in await self.database.run(second_tries.due, now, limit):
            if not await self.database.run(second_tries.take, row.id, now, LEASE):
                continue  # another instance took it
            try:
                await self._attempt(row)
                decided += 1
            except second_tries.AlreadyDecided:
                pass
            except Exception:
                # Left to its lease: the next run after it takes the attempt again.
                log.exception("a second try failed; tried again after its lease")
        return decided

    async def _attempt(self, scheduled: Any) -> None:
        case: Any = await self.database.run(cases.get, scheduled.case_id, _ALL)
        ruleset = stored_ruleset(
            await self.database.run(cases.ruleset_definition, case.ruleset_fingerprint),
            case.ruleset_fingerprint,
        )
        application = Application.from_json(case.request)
        earlier = await self.database.run(second_tries.of_case, case.id)
        latest = {(e["registry"], e["query"]): e for e in case.evidence}
        criteria = case.decision["criteria"]
        for attempt in earlier:
            if attempt.status == "decided":
                latest.update({(e["registry"], e["query"]): e for e in attempt.evidence})
                criteria = attempt.decision["criteria"]
        failed = set(to_ask_again(criteria, latest.values()) or ())
        failed.add((REVOCATIONS_BARS_OF.registry, REVOCATIONS_BARS_OF.name))  # ours: may change
        queries = [q for q in ruleset.queries if (q.registry, q.name) in failed]
        fresh = await asyncio.gather(*(self._ask(q, application) for q in queries))
        asked = [e for e in fresh if e is not None]
        latest.update({(e.registry, e.query): e.to_json() for e in asked})
        evidence = [Evidence.from_json(e) for e in latest.values()]
        judged = judge(self.engine, ruleset, application, case.application_date, evidence)
        now = self.clock()
        today = today_in_shanghai(now)
        employer = judged.records.get(CREDIT_EMPLOYER) or {}

        def decided(criteria: tuple[CriterionOutcome, ...]) -> second_tries.Decided:
            verdict = outcome(criteria)
            granted = self.engine.entitled(ruleset, judged.facts) if verdict == "approved" else []
            as_json = [c.to_json() for c in criteria]
            schedule = self.rulebook().second_try_after_minutes
            next_due = None
            if (
                verdict == "referred"
                and scheduled.attempt < len(schedule)
                and to_ask_again(as_json, latest.values()) is not None
            ):
                minutes = schedule[scheduled.attempt]
                next_due = max(now, case.decided_at + timedelta(minutes=minutes))
            return second_tries.Decided(
                try_id=scheduled.id,
                case_id=case.id,
                attempt=scheduled.attempt,
                outcome=verdict,
                decision={
                    "outcome": verdict,
                    "criteria": as_json,
                    "ruleset": ruleset.summary(),
                    "application_date": case.application_date.isoformat(),
                    "entitlements": [{"id": i, "amount_cny": a} for i, a in granted],
                },
                evidence=[e.to_json() for e in asked],
                requested_by=case.submitted_by,
                decided_at=now,
                today=today,
                city_prefix=self.city_prefix,
                terms=ruleset.supervision,
                risk_class=employer.get("risk_class"),
                employer_region=employer.get("region"),
                id_number=application.id_number,
                live_expired_on=live_expired_on(ruleset.parameters, today),
                next_due_at=next_due,
                review_due=(
                    review_due(self.calendar(), today)
                    if verdict == "referred" and next_due is None
                    else None
                ),
            )

        try:
            await self.database.run(second_tries.record, decided(judged.criteria))
        except LiveApprovalHeld as held:
            # Another approval of the person's is live: referred, naming it (policy §5).
            named = live_approval_held(judged.criteria, held.approval_number)
            await self.database.run(second_tries.record, decided(named))

    async def _ask(self, query: Query, application: Application) -> Evidence | None:
        argument = query_argument(query, application)
        return None if argument is None else await self.registries.ask(query, argument)

"""The periodic re-check (定期返查, policy.md §8).

Between ``recheck_from_days`` and ``recheck_until_days`` after its approval, every approved case
is asked of the registries again and judged under the rule version that approved it, on its
original application date (an age or a contribution run is what it was then; a diploma revoked
since is not). A criterion that passed and now fails — or is now unknown although every
registry it needs answered — opens one ``recheck`` audit task with the discrepancy. A registry
that does not answer leaves the case queued for the next run instead of raising a false alarm.

Runs on the event loop, like decisions, because it evaluates rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from miaopi.decision.replay import TamperedRuleset, stored_ruleset
from miaopi.decision.service import judge
from miaopi.domain import Application
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.model import Ruleset
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.gather import Registries, gather
from miaopi.evidence.recorded import employer_region
from miaopi.records import access_log, cases
from miaopi.records.database import Database
from miaopi.records.paging import new_id
from miaopi.supervision import queue, recheck_claims

log = logging.getLogger(__name__)
# How long a runner's claim on a case lasts: far longer than one case takes (its registry
# budgets), so only a runner that died loses its cases to the next run.
CLAIM_LEASE = timedelta(minutes=15)


@dataclass
class RecheckReport:
    checked: int = 0
    clean: int = 0
    discrepancies: int = 0
    incomplete: int = 0  # a registry did not answer; tried again next run
    missed: int = 0  # found after its window had closed
    assigned: int = 0  # waiting tasks that found an auditor
    tasks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"checked {self.checked}: {self.clean} clean, {self.discrepancies} with a "
            f"discrepancy ({len(self.tasks)} tasks opened), {self.incomplete} incomplete "
            f"(retried next run), {self.missed} past their window; "
            f"{self.assigned} waiting tasks assigned"
        )


@dataclass
class Rechecker:
    database: Database
    engine: RuleEngine
    registries: Registries
    rulebook: Callable[[], RuleBook]
    clock: Callable[[], datetime]
    _rulesets: dict[str, Ruleset] = field(default_factory=dict)

    async def run(self) -> RecheckReport:
        report = RecheckReport()
        now = self.clock()
        report.assigned = await self.database.run_in_thread(queue.assign_waiting, now)
        today = today_in_shanghai(now)
        earliest = min(
            (r.supervision.recheck_from_days for r in self.rulebook().rulesets), default=0
        )
        runner = new_id()
        try:
            while True:
                # Batches claimed under a lease: runners on other instances take other cases.
                batch = await self.database.run_in_thread(
                    lambda engine: recheck_claims.claim_rechecks(
                        engine, runner=runner, now=self.clock(), lease=CLAIM_LEASE,
                        approved_on_or_before=today - timedelta(days=earliest),
                    )
                )  # fmt: skip
                if not batch:
                    break
                for row in batch:
                    try:
                        await self._one(row, runner, report)
                    except TamperedRuleset:
                        log.error("re-check skipped: case %s has a tampered rule version", row.id)
        finally:
            # Not finished (no answer, not due yet, tampered): back in the queue for next time.
            await self.database.run_in_thread(recheck_claims.release_rechecks, runner)
        return report

    async def _ruleset(self, fp: str) -> Ruleset:
        if fp not in self._rulesets:
            definition = await self.database.run_in_thread(cases.ruleset_definition, fp)
            self._rulesets[fp] = stored_ruleset(definition, fp)
        return self._rulesets[fp]

    async def _one(self, row: Any, runner: str, report: RecheckReport) -> None:
        ruleset = await self._ruleset(row.ruleset_fingerprint)
        terms = ruleset.supervision
        now = self.clock()
        age = (today_in_shanghai(now) - row.application_date).days
        if age < terms.recheck_from_days:
            return
        if age > terms.recheck_until_days:
            await self._finish(row.id, runner, "missed", now)
            report.missed += 1
            return
        report.checked += 1
        application = Application.from_json(row.request)
        answers = await gather(self.registries, list(ruleset.queries), application)
        await self.database.run_in_thread(
            lambda engine: access_log.record_queries(
                engine, [e.to_json() for e in answers.values()], "recheck", case_id=row.id,
                requested_by=None, id_number=application.id_number,
            )
        )  # fmt: skip
        judged = judge(self.engine, ruleset, application, row.application_date, answers.values())
        recorded = {c["id"]: c["result"] for c in row.decision["criteria"]}
        unanswered = {
            e.registry for e in answers.values() if e.status in ("unavailable", "invalid")
        }
        discrepancy, incomplete = [], False
        for criterion in judged.criteria:
            if recorded.get(criterion.id) != "pass" or criterion.result == "pass":
                continue
            if criterion.result == "unknown" and unanswered & set(criterion.registries):
                incomplete = True  # no answer is not evidence of anything
                continue
            discrepancy.append(
                {
                    "criterion": criterion.id,
                    "recorded": "pass",
                    "rechecked": criterion.result,
                    "registries": list(criterion.registries),
                }
            )
        if discrepancy:
            task = await self.database.run_in_thread(
                lambda engine: recheck_claims.finish_recheck(
                    engine,
                    case_id=row.id,
                    runner=runner,
                    result="discrepancy",
                    now=now,
                    discrepancy=discrepancy,
                    employer_region=employer_region(row.evidence),
                    due_date=row.application_date + timedelta(days=terms.audit_due_days),
                )
            )
            report.discrepancies += 1
            if task:
                report.tasks.append(task)
        elif incomplete:
            report.incomplete += 1
        else:
            await self._finish(row.id, runner, "clean", now)
            report.clean += 1

    async def _finish(self, case_id: str, runner: str, result: str, now: datetime) -> None:
        await self.database.run_in_thread(
            lambda engine: recheck_claims.finish_recheck(
                engine, case_id=case_id, runner=runner, result=result, now=now
            )
        )

"""The use cases decide and record without a database: the fake unit of work stands in.

The registries are the mock registries over HTTP, as in every other test of decisions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from miaopi.bootstrap import wire_registries
from miaopi.decision.service import Decider, Decision
from miaopi.domain import Application
from miaopi.eligibility.calendar import WorkingCalendar
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.model import canonical_json
from miaopi.eligibility.ruleset import RuleBook
from miaopi.records.clients import Client
from miaopi.settings import Settings
from miaopi.usecases.close_task import Findings, close_task
from miaopi.usecases.dry_run import dry_run
from miaopi.usecases.errors import (
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
)
from miaopi.usecases.replay import replay_case
from miaopi.usecases.submit import Submission, submit
from tests.conftest import EMPLOYER, NOW, OTHER_EMPLOYER, RULES, application
from tests.unit.fakes import FakeUnitOfWork, NoBars

pytestmark = pytest.mark.anyio

CALENDAR = WorkingCalendar.load(RULES)
HR = Client(id=7, role="employer", name="HR", key_prefix="k7", uscc=EMPLOYER)
PORTAL = Client(id=8, role="channel", name="portal", key_prefix="k8")
AUDITOR = Client(id=9, role="auditor", name="auditor", key_prefix="k9", district="440304")


class CountingDecider(Decider):
    decisions = 0

    async def decide(self, application: Application, as_of: date | None = None) -> Decision:
        self.decisions += 1
        return await super().decide(application, as_of)


@pytest.fixture
async def decider(rulebook: RuleBook, rule_engine: RuleEngine) -> AsyncIterator[Decider]:
    settings = Settings(rules_dir=RULES, _env_file=None)  # type: ignore[call-arg]
    registries, clients, _ = wire_registries(settings, NoBars())
    yield CountingDecider(rulebook, rule_engine, registries, lambda: NOW)
    for client in clients:
        await client.aclose()


async def _submit(submission: Submission, decider: Decider, uow: FakeUnitOfWork) -> Any:
    return await submit(submission, decider=decider, uow=uow, city_prefix="4403", calendar=CALENDAR)


def _submission(client: Client = HR, key: str | None = None, **changes: Any) -> Submission:
    body = application(**changes)
    return Submission(
        application=Application.from_json(body),
        client=client,
        canonical_body=canonical_json(body),
        idempotency_key=key,
    )


async def test_an_approval_is_recorded_once_with_its_number_and_its_queries(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    done = await _submit(_submission(key="k1"), decider, uow)
    assert not done.replayed
    assert done.case.status == "approved"
    assert done.case.approval_number == "4403-2026-000001"
    assert list(uow.cases) == [done.case.id]
    assert {c["result"] for c in done.case.decision["criteria"]} == {"pass"}
    assert {q["registry"] for q in uow.logged} >= {"police", "education", "credit"}


async def test_the_same_key_and_body_again_is_the_same_case_decided_once(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    first = await _submit(_submission(key="k1"), decider, uow)
    again = await _submit(_submission(key="k1"), decider, uow)
    assert again.replayed
    assert again.case.id == first.case.id
    assert len(uow.cases) == 1
    assert decider.decisions == 1  # type: ignore[attr-defined]  # the registries asked once


async def test_the_same_key_with_another_body_is_refused_and_records_nothing(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    await _submit(_submission(key="k1"), decider, uow)
    with pytest.raises(IdempotencyKeyReused):
        await _submit(_submission(key="k1", name="李明明"), decider, uow)
    assert len(uow.cases) == 1


async def test_a_concurrent_request_that_claimed_the_key_first_gives_its_case(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    winner = await _submit(_submission(key="other"), decider, uow)
    winner_claim = uow.claims[(HR.id, "other")]

    def concurrent_commit() -> None:  # the other request commits while this one decides
        uow.claims[(HR.id, "k1")] = winner_claim

    uow.before_claim = concurrent_commit
    done = await _submit(_submission(key="k1"), decider, uow)
    assert done.replayed
    assert done.case.id == winner.case.id
    assert len(uow.cases) == 1


async def test_an_employer_may_not_apply_for_another_and_nothing_is_asked(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(Forbidden):
        await _submit(_submission(uscc=OTHER_EMPLOYER), decider, uow)
    assert uow.cases == {}
    assert uow.logged == []


async def test_a_channel_may_apply_for_any_employer(decider: Decider) -> None:
    uow = FakeUnitOfWork()
    done = await _submit(_submission(PORTAL, uscc=OTHER_EMPLOYER), decider, uow)
    assert done.case.employer_uscc == OTHER_EMPLOYER


async def test_a_graduate_without_a_diploma_number_is_invalid_input_naming_it(
    decider: Decider,
) -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidInput) as refused:
        await _submit(_submission(diploma_no=None), decider, uow)
    assert refused.value.loc == ["body", "claims", "diploma_no"]
    assert uow.logged == []


async def test_a_dry_run_logs_its_queries_and_records_no_case(decider: Decider) -> None:
    uow = FakeUnitOfWork()
    done = await dry_run(
        Application.from_json(application()), PORTAL, None, decider=decider, uow=uow
    )
    assert done.decision.outcome == "approved"
    assert uow.cases == {}
    assert uow.logged
    assert {q["evaluation_id"] for q in uow.logged} == {done.evaluation_id}
    assert {q["purpose"] for q in uow.logged} == {"dry_run"}


async def test_a_replay_of_a_recorded_case_is_identical(
    decider: Decider, rule_engine: RuleEngine
) -> None:
    uow = FakeUnitOfWork()
    done = await _submit(_submission(), decider, uow)
    case_id, result, later = await replay_case(done.case.id, HR, uow=uow, engine=rule_engine)
    assert case_id == done.case.id
    assert result.identical
    assert later == []  # approved at once: no later decision


async def test_a_replay_without_its_stored_rules_is_a_conflict(
    decider: Decider, rule_engine: RuleEngine
) -> None:
    uow = FakeUnitOfWork()
    done = await _submit(_submission(), decider, uow)
    uow.definitions.clear()
    with pytest.raises(Conflict) as refused:
        await replay_case(done.case.id, HR, uow=uow, engine=rule_engine)
    assert refused.value.slug == "ruleset-missing"


async def test_another_employers_case_is_not_found(decider: Decider) -> None:
    uow = FakeUnitOfWork()
    done = await _submit(_submission(PORTAL, uscc=OTHER_EMPLOYER), decider, uow)
    with pytest.raises(NotFound):
        await replay_case(done.case.id, HR, uow=uow, engine=RuleEngine())


async def test_a_revocation_needs_its_reason_and_a_closure_is_final() -> None:
    uow = FakeUnitOfWork()
    uow.tasks.add("t1")
    checks = {"completeness": "ok", "consistency": "ok", "compliance": "issue", "notes": ""}
    with pytest.raises(InvalidInput) as refused:
        await close_task("t1", Findings(checks, "revoked"), AUDITOR, uow=uow, now=NOW)
    assert refused.value.loc == ["body", "reason"]
    assert uow.closed == {}
    await close_task("t1", Findings(checks, "revoked", "forged"), AUDITOR, uow=uow, now=NOW)
    assert uow.closed["t1"]["reason"] == "forged"
    with pytest.raises(Conflict):
        await close_task("t1", Findings(checks, "confirmed"), AUDITOR, uow=uow, now=NOW)
    with pytest.raises(NotFound):
        await close_task("t2", Findings(checks, "confirmed"), AUDITOR, uow=uow, now=NOW)

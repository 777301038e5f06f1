"""What the integration tests of the records share: a migrated database and a case to record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import anyio
import pytest
from sqlalchemy import Engine

from miaopi.eligibility.ruleset import RuleBook
from miaopi.records.cases import NewCase
from miaopi.records.database import Database
from miaopi.records.migrate import upgrade
from miaopi.records.sealing import DataKey
from tests.conftest import DATA_KEY, NOW, ON_POSTGRES


@pytest.fixture
def store(database_url: str) -> Iterator[Database]:
    store = Database(database_url, DataKey(DATA_KEY))
    upgrade(store.engine)
    yield store
    store.dispose()  # no pooled connection outlives the test's database


@pytest.fixture
def engine(store: Database) -> Engine:
    return store.engine


Work = Callable[[Engine], Any]
Where = Callable[[Work], Any]


@pytest.fixture(params=["thread", "event loop"] if ON_POSTGRES else ["thread"])
def where(request: pytest.FixtureRequest, store: Database) -> Where:
    """Runs ``work(engine)`` as a statement thread would, or, on PostgreSQL, as the service's
    event loop does: in ``Database.run``'s greenlet, over psycopg's asyncio connections."""

    def on_thread(work: Work) -> Any:
        return work(store.engine)

    async def on_loop(work: Work) -> Any:
        store.open_on_this_loop()
        try:
            return await store.run(work)
        finally:
            await store.close_on_this_loop()

    if request.param == "thread":
        return on_thread
    return lambda work: anyio.run(on_loop, work)


def new_case(
    rulebook: RuleBook,
    client_id: int,
    *,
    status: str = "approved",
    risk_class: str = "B",
    registries: tuple[str, ...] = (),
) -> NewCase:
    """A graduate's case under the rules in force, with one answered query per registry."""
    ruleset = rulebook.in_force("graduate", date(2026, 11, 22))
    assert ruleset is not None
    return NewCase(
        status=status,
        business_type="graduate",
        applicant_name="李明",
        applicant_id_number="420102200203151232",
        employer_uscc="91440305MA5F1Q2RXK",
        # As a decision has it: the employer's name is the credit registry's answer.
        employer_name="前海智造" if "credit" in registries else None,
        submitted_by=client_id,
        application_date=date(2026, 11, 22),
        ruleset_fingerprint=ruleset.fingerprint,
        ruleset_definition=ruleset.definition,
        ruleset_version=ruleset.version,
        request={"business_type": "graduate"},
        decision={"outcome": status, "criteria": []},
        evidence=[
            {
                "registry": registry,
                "query": "employer" if registry == "credit" else "person",
                "queried_at": NOW.isoformat(),
                "elapsed_ms": 40.0,
                "status": "ok",
                **({"record": {"name": "前海智造"}} if registry == "credit" else {}),
            }
            for registry in registries
        ],
        submitted_at=NOW,
        decided_at=NOW,
        elapsed_ms=120.0,
        risk_class=risk_class,
        employer_region="440305",
        supervision=ruleset.supervision,
    )

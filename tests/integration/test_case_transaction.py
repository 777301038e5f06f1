"""A case's transaction is all or nothing, also when its statements are sent ahead (pipelined)."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest
from sqlalchemy import Engine, func, select

from miaopi.eligibility.ruleset import RuleBook
from miaopi.records import cases, ledger_verify
from miaopi.records.cases import IdempotencyRace, NewCase
from miaopi.records.clients import create_client
from miaopi.records.database import Database
from miaopi.records.tables import approval_counters, case_events, registry_queries
from miaopi.records.tables import cases as case_table
from miaopi.records.tables import ledger as ledger_table
from tests.conftest import ON_POSTGRES
from tests.integration.conftest import Where, new_case

REGISTRIES = ("police", "education", "credit")


def _case(rulebook: RuleBook, client_id: int, status: str = "approved") -> NewCase:
    return new_case(rulebook, client_id, status=status, registries=REGISTRIES)


def _counts(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {
            "cases": conn.execute(select(func.count()).select_from(case_table)).scalar(),
            "queries": conn.execute(select(func.count()).select_from(registry_queries)).scalar(),
            "events": conn.execute(select(func.count()).select_from(case_events)).scalar(),
            "ledger": conn.execute(select(func.count()).select_from(ledger_table)).scalar(),
            "numbers": conn.execute(select(approval_counters.c.last)).scalars().all(),
        }


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_a_key_another_case_took_is_a_race_and_the_losing_case_leaves_nothing(
    engine: Engine, where: Where, rulebook: RuleBook, status: str
) -> None:
    client, _ = create_client(engine, "channel", "portal")
    first = cases.record(
        engine,
        _case(rulebook, client.id, status),
        "4403",
        (client.id, "k", "h"),
    )
    before = _counts(engine)

    # The key's insert fails on the server; the statements sent after it must not count.
    with pytest.raises(IdempotencyRace):
        where(
            lambda on: cases.record(
                on, _case(rulebook, client.id, status), "4403", (client.id, "k", "h")
            )
        )

    assert _counts(engine) == before
    assert ledger_verify.verify(engine).intact
    assert cases.find_idempotent(engine, client.id, "k") == ("h", first.id)
    # The next approval takes the next number: the loser's increment was taken back.
    after = cases.record(engine, _case(rulebook, client.id), "4403")
    expected = 2 if status == "approved" else 1
    assert after.approval_number == f"4403-2026-{expected:06d}"


def test_cases_recorded_one_after_another_are_each_stored_numbered_and_chained(
    engine: Engine, rulebook: RuleBook
) -> None:
    client, _ = create_client(engine, "channel", "portal")
    statuses = ["approved", "rejected", "approved", "referred", "approved"]
    recorded = [cases.record(engine, _case(rulebook, client.id, s), "4403") for s in statuses]

    numbers = [r.approval_number for r in recorded if r.status == "approved"]
    assert numbers == ["4403-2026-000001", "4403-2026-000002", "4403-2026-000003"]
    with engine.connect() as conn:
        stored = dict(conn.execute(select(case_table.c.id, case_table.c.approval_number)).all())
    assert stored == {r.id: r.approval_number for r in recorded}
    assert _counts(engine)["queries"] == len(REGISTRIES) * len(statuses)
    verdict = ledger_verify.verify(engine)
    assert verdict.intact
    assert verdict.entries == len(statuses)


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite's cases are written on the loop's thread")
def test_cases_recorded_at_once_on_the_event_loop_never_leave_its_thread(
    store: Database, engine: Engine, rulebook: RuleBook
) -> None:
    client, _ = create_client(engine, "channel", "portal")
    statuses = ["approved", "rejected", "approved", "referred"] * 8  # more than the 20 turns
    threads: set[int] = set()

    def record(on: Engine, status: str) -> object:
        threads.add(threading.get_ident())
        return cases.record(on, _case(rulebook, client.id, status), "4403")

    async def all_at_once() -> list[object]:
        store.open_on_this_loop()
        try:
            return await asyncio.gather(*(store.run(record, s) for s in statuses))
        finally:
            await store.close_on_this_loop()

    recorded = anyio.run(all_at_once)

    assert threads == {threading.get_ident()}
    numbers = sorted(r.approval_number for r in recorded if r.status == "approved")
    assert numbers == [f"4403-2026-{n:06d}" for n in range(1, statuses.count("approved") + 1)]
    verdict = ledger_verify.verify(engine)
    assert (verdict.intact, verdict.entries) == (True, len(statuses))
    engine.dispose()
    with engine.connect() as conn:  # the loop's connections were closed with it
        others = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    assert others == 0


def test_the_millionth_approval_of_a_year_gets_seven_digits_and_a_chain_that_holds(
    engine: Engine, where: Where, rulebook: RuleBook
) -> None:
    client, _ = create_client(engine, "channel", "portal")
    first = cases.record(engine, _case(rulebook, client.id), "4403")
    with engine.begin() as conn:
        conn.execute(approval_counters.update().values(last=999_999))

    def approve(on: Engine) -> object:
        return cases.record(on, _case(rulebook, client.id), "4403")

    millionth = where(approve)

    assert first.approval_number == "4403-2026-000001"
    assert millionth.approval_number == "4403-2026-1000000"
    with engine.connect() as conn:
        stored = conn.execute(
            select(case_table.c.approval_number).where(case_table.c.id == millionth.id)
        ).scalar()
    assert stored == "4403-2026-1000000"
    verdict = ledger_verify.verify(engine)
    assert (verdict.intact, verdict.entries) == (True, 2)

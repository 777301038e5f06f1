"""Supervision as recorded: the draw's rates over a large batch, and the upgrade from 0001."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from miaopi.eligibility.ruleset import RuleBook
from miaopi.records import cases, ledger, ledger_verify
from miaopi.records.clients import create_client
from miaopi.records.engines import make_engine
from miaopi.records.migrate import alembic_config, upgrade
from miaopi.records.sealing import DataKey
from miaopi.records.tables import (
    audit_tasks,
    case_events,
    ledger_head,
    spot_check_draws,
    supervision_queue,
)
from miaopi.records.tables import cases as case_table
from miaopi.supervision.draw import is_selected
from miaopi.supervision.queue import assign_waiting
from tests.conftest import DATA_KEY, sqlite_only, stored_bytes
from tests.integration.conftest import new_case


@pytest.mark.slow
def test_approvals_are_drawn_at_their_risk_class_rate(engine: Engine, rulebook: RuleBook) -> None:
    client, _ = create_client(engine, "channel", "batch")
    create_client(engine, "auditor", "a", district="440306")
    batch = {"A": 3000, "B": 3000, "C": 150, "D": 150}
    for risk_class, n in batch.items():
        for _ in range(n):
            cases.record(engine, new_case(rulebook, client.id, risk_class=risk_class), "4403")

    with engine.connect() as conn:
        drawn = dict(
            conn.execute(
                select(spot_check_draws.c.risk_class, func.count())
                .where(spot_check_draws.c.selected.is_(True))
                .group_by(spot_check_draws.c.risk_class)
            ).all()
        )
        tasks = conn.execute(select(func.count()).select_from(audit_tasks)).scalar_one()
        queued = conn.execute(select(func.count()).select_from(supervision_queue)).scalar_one()
        draws = conn.execute(select(spot_check_draws)).all()
        seed = conn.exec_driver_sql("SELECT seed FROM audit_periods").scalar_one()

    assert queued == sum(batch.values())  # every approval queued for re-check
    for risk_class, rate in (("A", 0.025), ("B", 0.05)):
        n = batch[risk_class]
        sd = (n * rate * (1 - rate)) ** 0.5
        assert abs(drawn.get(risk_class, 0) - n * rate) < 5 * sd, (risk_class, drawn)
    assert drawn["C"] == batch["C"]
    assert drawn["D"] == batch["D"]
    assert tasks == sum(drawn.values())  # one spot-check task per selected approval
    # The stored flags are exactly what the seed gives.
    assert all(is_selected(seed, d.case_id, d.rate) == d.selected for d in draws)


def test_upgrading_from_0001_gives_existing_cases_their_history(database_url: str) -> None:
    engine = make_engine(database_url, DataKey(DATA_KEY))
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO clients (id, key_prefix, key_salt, key_hash, role, name, active, "
            "created_at) VALUES (1, 'p', 's', 'h', 'channel', 'c', TRUE, '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO rulesets VALUES ('fp', 'graduate', '2021.08', '{}', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO cases (id, status, outcome, business_type, applicant_name, "
            "applicant_id_number, employer_uscc, submitted_by, application_date, "
            "ruleset_fingerprint, request, decision, evidence, submitted_at, decided_at, "
            "elapsed_ms) VALUES ('old', 'rejected', 'rejected', 'graduate', 'n', 'i', 'u', 1, "
            "'2026-01-01', 'fp', '{}', '{}', '[]', '2026-01-01 00:00:00', "
            "'2026-01-01 00:00:00', 1.0)"
        )
    upgrade(engine)
    with engine.connect() as conn:
        events = conn.execute(select(case_events.c.case_id, case_events.c.event)).all()
    engine.dispose()
    assert [tuple(e) for e in events] == [("old", "decided")]


def test_upgrading_seals_stored_personal_data_and_keeps_the_ledger_intact(
    database_url: str,
) -> None:
    from miaopi.records.ledger_verify import verify
    from miaopi.records.revocations import own_records_of

    engine = make_engine(database_url, DataKey(DATA_KEY))
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")  # before the ledger and sealing: all in plain text
    with engine.begin() as conn:
        for statement in (
            "INSERT INTO clients (id, key_prefix, key_salt, key_hash, role, name, active, "
            "created_at) VALUES (1, 'p', 's', 'h', 'channel', 'c', TRUE, '2026-01-01 00:00:00')",
            "INSERT INTO rulesets VALUES ('fp', 'graduate', '2021.08', '{}', "
            "'2026-01-01 00:00:00')",
            "INSERT INTO cases (id, status, outcome, business_type, applicant_name, "
            "applicant_id_number, employer_uscc, submitted_by, application_date, "
            "ruleset_fingerprint, request, decision, evidence, submitted_at, decided_at, "
            "elapsed_ms, revoked_at, revocation_reason) VALUES ('old', 'revoked', 'approved', "
            "'graduate', '李明', '420102200203151232', 'u', 1, '2026-01-01', 'fp', "
            '\'{"applicant": {"name": "李明", "id_number": "420102200203151232"}}\', '
            '\'{"outcome": "approved"}\', \'[{"record": {"name": "李明"}}]\', '
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 1.0, '2026-02-01 00:00:00', "
            "'李明 forged it')",
            "INSERT INTO case_events (case_id, at, event, status, detail) VALUES ('old', "
            "'2026-02-01 00:00:00', 'revoked', 'revoked', '{\"reason\": \"李明 forged it\"}')",
            "INSERT INTO fraud_bars (id_number, barred_on, case_id, created_at) VALUES "
            "('420102200203151232', '2026-02-01', 'old', '2026-02-01 00:00:00')",
        ):
            conn.exec_driver_sql(statement)

    upgrade(engine)

    with engine.connect() as conn:
        case = conn.execute(select(case_table).where(case_table.c.id == "old")).one()
        events = conn.execute(select(case_events.c.detail)).scalars().all()
    assert (case.applicant_name, case.applicant_id_number) == ("李明", "420102200203151232")
    assert case.request["applicant"]["name"] == "李明"
    assert case.revocation_reason == "李明 forged it"
    # 0016: the keyed hash the applicant's view finds dry runs by; no access code was ever given.
    assert case.applicant_id_hash == DataKey(DATA_KEY).lookup_hash("420102200203151232")
    assert case.access_code_hash is None
    assert {"reason": "李明 forged it"} in events
    assert [b.case_id for b in own_records_of(engine, "420102200203151232")[0]] == ["old"]
    assert own_records_of(engine, "430104199608202463")[0] == []
    verdict = verify(engine)  # 0004 chained the plain rows; their records read the same sealed
    assert verdict.intact, verdict
    assert verdict.entries == 2
    raw = stored_bytes(engine)
    engine.dispose()
    assert b"420102200203151232" not in raw
    assert "李明".encode() not in raw


def test_a_seed_drawn_by_a_case_that_rolled_back_is_never_used(
    engine: Engine, rulebook: RuleBook
) -> None:
    # The first approval of the period draws its seed, then fails: without the ledger's head
    # row it cannot be chained, so it must not be recorded at all.
    client, _ = create_client(engine, "channel", "batch")
    with engine.begin() as conn:
        conn.execute(ledger_head.delete())
    with pytest.raises((LookupError, IntegrityError)):
        cases.record(engine, new_case(rulebook, client.id), "4403")
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(case_table)).scalar_one() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_periods").scalar_one() == 0
        conn.execute(ledger_head.insert().values(id=1, last_seq=0, last_hash=ledger.GENESIS))

    # Every later draw of the period follows the seed it stored, not the one taken back
    # (at risk class B's 5 %, a draw under another seed differs one time in ten or so).
    for _ in range(100):
        cases.record(engine, new_case(rulebook, client.id), "4403")
    with engine.connect() as conn:
        draws = conn.execute(select(spot_check_draws)).all()
        seed = conn.exec_driver_sql("SELECT seed FROM audit_periods").scalar_one()
    assert len(draws) == 100
    assert all(is_selected(seed, d.case_id, d.rate) == d.selected for d in draws)
    assert ledger_verify.verify(engine).intact


@sqlite_only
def test_tasks_no_auditor_can_take_wait_without_holding_the_write_slot(
    engine: Engine, rulebook: RuleBook
) -> None:
    """Tasks wait while their district has no auditor from elsewhere, and every re-check run
    looks at them again: that takes no write, so it never waits for, or holds, the database."""
    client, _ = create_client(engine, "channel", "batch")
    create_client(engine, "auditor", "one of the district", district="440305")
    for _ in range(5):  # class C: every approval is drawn; the employer is in 440305
        cases.record(engine, new_case(rulebook, client.id, risk_class="C"), "4403")
    now = new_case(rulebook, client.id).decided_at

    holder = sqlite3.connect(str(engine.url.database))
    holder.execute("BEGIN IMMEDIATE")  # another writer, for as long as this test likes
    try:
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(assign_waiting, engine, now).result(timeout=5) == 0
    finally:
        holder.rollback()
        holder.close()

    create_client(engine, "auditor", "from elsewhere", district="440304")
    assert assign_waiting(engine, now) == 5
    assert assign_waiting(engine, now) == 0

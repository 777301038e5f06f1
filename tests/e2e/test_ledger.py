"""The decision ledger: a hash chain that names the first entry a direct database edit broke."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import Engine, select, text

from miaopi.bootstrap import Container
from miaopi.records import ledger
from miaopi.records.ledger_verify import verify
from miaopi.records.tables import audit_tasks, cases
from tests.conftest import DATA_KEY, ON_POSTGRES, RULES, application, sqlite_only

pytestmark = pytest.mark.anyio
FUTIAN = "91440304MA5H3T8P2L"
Keys = Callable[..., dict[str, str]]


def portable(sql: str) -> str:
    """The edits are written for SQLite; PostgreSQL keeps decisions as json, not text."""
    if not ON_POSTGRES:
        return sql
    sql = re.sub(r"(instr|substr|replace)\(decision,", r"\1(decision::text,", sql)
    sql = sql.replace("instr(", "strpos(")
    return re.sub(r"decision = (.*) WHERE", r"decision = (\1)::json WHERE", sql)


async def fill(api: httpx.AsyncClient, make_key: Keys) -> list[str]:
    """Three decisions, one of them revoked by its auditor: five entries."""
    employer = make_key("employer", uscc=FUTIAN)
    auditor = make_key("auditor", district="440305")
    ids = []
    for who in ({}, {"id_number": "430104199608202463", "name": "王芳",
                     "diploma_no": "105331202603000456"}):  # fmt: skip
        case = await api.post(
            "/v1/applications", json=application(uscc=FUTIAN, **who), headers=employer
        )
        ids.append(case.json()["case_id"])
    rejected = application(uscc=FUTIAN, id_number="510104200111023588", name="陈晨",
                           diploma_no="106101202602000789")  # fmt: skip
    ids.append(
        (await api.post("/v1/applications", json=rejected, headers=employer)).json()["case_id"]
    )
    task = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"][-1]
    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={
            "completeness": "ok",
            "consistency": "issue",
            "compliance": "issue",
            "outcome": "revoked",
            "reason": "forged",
        },
        headers=auditor,
    )
    assert closed.status_code == 200
    return ids


async def test_an_untouched_ledger_verifies(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    await fill(api, make_key)
    verdict = verify(container.database.engine)
    assert verdict.intact, verdict
    assert verdict.entries == 5  # three decisions, a revocation, an audit closure


@pytest.mark.parametrize(
    ("edit", "entry", "reason"),
    [
        # One byte of the second decision: a criterion's "pass" becomes "pasS".
        ("UPDATE cases SET decision = substr(decision, 1, instr(decision, '\"pass\"')) || 'pasS' "
         "|| substr(decision, instr(decision, '\"pass\"') + 5) WHERE seq = 2", 2,
         "decision record was changed"),
        ("UPDATE cases SET approval_number = '4403-2026-000009' WHERE seq = 1", 1,
         "decision record was changed"),
        ("UPDATE cases SET revocation_reason = 'typo' WHERE status = 'revoked'", 4,
         "revocation record was changed"),
        ("UPDATE audit_tasks SET outcome = 'confirmed' WHERE status = 'closed'", 5,
         "audit_closure record was changed"),
        # Evidence is sealed: one character of its ciphertext changed.
        ("UPDATE cases SET evidence = substr(evidence, 1, 40) || CASE substr(evidence, 41, 1)"
         " WHEN 'A' THEN 'B' ELSE 'A' END || substr(evidence, 42) WHERE seq = 1", 1,
         "decision record was changed"),
        ("DELETE FROM ledger WHERE seq = 3", 4, "entry 3 is missing"),
        ("UPDATE ledger SET record_hash = '" + "0" * 64 + "' WHERE seq = 2", 2,
         "record was changed"),
        ("UPDATE ledger SET at = '2020-01-01 00:00:00' WHERE seq = 3", 3,
         "the entry itself was changed"),
        ("DELETE FROM audit_tasks WHERE status = 'closed'", 5, "audit_closure record is gone"),
        # How the record was hashed is part of the entry too: an approval's, from its format 3.
        ("UPDATE ledger SET record_format = 1 WHERE seq = 1", 1, "decision record was changed"),
        ("UPDATE ledger SET record_format = 7 WHERE seq = 2", 2, "record format 7 is unknown"),
        ("UPDATE ledger SET record_format = 3 WHERE seq = 4", 4, "revocation record was changed"),
        ("UPDATE ledger SET kind = 'gift' WHERE seq = 3", 3, "kind 'gift' is unknown"),
    ],
)  # fmt: skip
async def test_a_direct_edit_is_caught_at_its_entry(
    api: httpx.AsyncClient, make_key: Keys, container: Container, edit: str, entry: int,
    reason: str,
) -> None:  # fmt: skip
    await fill(api, make_key)
    with container.database.engine.begin() as conn:
        assert conn.execute(text(portable(edit))).rowcount == 1
    verdict = verify(container.database.engine)
    assert not verdict.intact
    assert verdict.broken_at == entry
    assert reason in verdict.reason


async def test_an_entry_pins_the_stored_text_of_a_decision(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    """A decision's documents are hashed as the text stored: even an edit that keeps the JSON's
    meaning (a space before it) breaks the chain at that decision."""
    await fill(api, make_key)
    with container.database.engine.begin() as conn:
        edit = "UPDATE cases SET decision = ' ' || decision WHERE seq = 3"
        assert conn.execute(text(portable(edit))).rowcount == 1
    verdict = verify(container.database.engine)
    assert (verdict.broken_at, verdict.reason) == (3, "its decision record was changed")


def rechain_as_before(engine: Engine, formats: dict[int, int]) -> None:
    """Make the ledger anew over the same rows as builds before this one did: the decision of
    entry N (a key of ``formats``) in the format given, hashed from the stored rows."""
    with engine.begin() as conn:
        entries = conn.execute(text("SELECT seq, kind, case_id, subject_id FROM ledger "
                                    "ORDER BY seq")).all()  # fmt: skip
        conn.execute(text("DELETE FROM ledger"))
        conn.execute(
            text("UPDATE ledger_head SET last_seq = 0, last_hash = :genesis"),
            {"genesis": ledger.GENESIS},
        )
        for seq, kind, case_id, subject_id in entries:
            case = conn.execute(select(cases).where(cases.c.id == case_id)).one()
            task = conn.execute(select(audit_tasks).where(audit_tasks.c.id == subject_id)).first()
            record, record_format, at = {
                "decision": (ledger.decision_record(case), formats.get(seq), case.decided_at),
                "revocation": (ledger.revocation_record(case), ledger.WHOLE, case.revoked_at),
                "audit_closure": (
                    task and ledger.closure_record(task),
                    ledger.WHOLE,
                    task and task.closed_at,
                ),
            }[kind]
            ledger.append(conn, kind, case_id, subject_id, record, at, record_format)


async def test_entries_older_builds_made_still_verify(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    await fill(api, make_key)
    rechain_as_before(
        container.database.engine, {1: ledger.WHOLE, 2: ledger.NUMBER_APART, 3: ledger.WHOLE}
    )
    verdict = verify(container.database.engine)
    assert verdict.intact, verdict
    assert verdict.entries == 5
    # Hashed from the documents' meaning, not their text: a space before it keeps it.
    with container.database.engine.begin() as conn:
        spaced = "UPDATE cases SET decision = ' ' || decision WHERE seq = 2"
        assert conn.execute(text(portable(spaced))).rowcount == 1
    assert verify(container.database.engine).intact
    with container.database.engine.begin() as conn:
        edit = (
            "UPDATE cases SET decision = substr(decision, 1, instr(decision, '\"pass\"')) "
            "|| 'pasS' || substr(decision, instr(decision, '\"pass\"') + 5) WHERE seq = 2"
        )
        assert conn.execute(text(portable(edit))).rowcount == 1
    verdict = verify(container.database.engine)
    assert (verdict.broken_at, verdict.reason) == (2, "its decision record was changed")


@sqlite_only  # PostgreSQL's json columns refuse what is not JSON
async def test_an_older_entry_whose_decision_is_no_longer_json_is_named(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    await fill(api, make_key)
    rechain_as_before(
        container.database.engine, {1: ledger.NUMBER_APART, 2: ledger.WHOLE, 3: ledger.WHOLE}
    )
    with container.database.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET decision = '{\"outcome\": ' WHERE seq = 1"))
    verdict = verify(container.database.engine)
    assert (verdict.broken_at, verdict.reason) == (1, "its decision record was changed (not JSON)")


async def test_cutting_the_tail_or_recording_around_the_ledger_is_caught(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    await fill(api, make_key)
    with container.database.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger WHERE seq = 5"))
    assert "cut" in verify(container.database.engine).reason
    with container.database.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_head SET last_seq = 4, last_hash = "
                          "(SELECT entry_hash FROM ledger WHERE seq = 4)"))  # fmt: skip
    verdict = verify(container.database.engine)
    assert "a closed audit task without its closure entry" in verdict.reason
    assert verdict.case_id is not None
    assert verdict.case_id in verdict.reason


async def test_the_cli_verifies_and_names_the_broken_entry(
    api: httpx.AsyncClient, make_key: Keys, container: Container, tmp_path: Path
) -> None:
    await fill(api, make_key)
    env = {
        **os.environ,
        "MIAOPI_DATABASE_URL": str(container.database.engine.url),
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_RULES_DIR": str(RULES),
    }
    ok = await anyio.run_process([sys.executable, "-m", "miaopi.cli", "ledger", "verify"],
                                 env=env, check=False, cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode().strip() == "ledger intact: 5 entries"
    with container.database.engine.begin() as conn:
        conn.execute(text(portable("UPDATE cases SET elapsed_ms = elapsed_ms, decision = "
                          "replace(decision, 'bachelor', 'bachelo_') WHERE seq = 1")))  # fmt: skip
    broken = await anyio.run_process([sys.executable, "-m", "miaopi.cli", "ledger", "verify"],
                                     env=env, check=False, cwd=tmp_path)  # fmt: skip
    assert broken.returncode == 1
    first = (await api.get("/v1/applications", headers=make_key("admin"))).json()["items"][-1]
    assert (
        f"ledger broken at entry 1, case {first['case_id']}, approval "
        f"{first['approval_number']}: its decision record was changed"
    ) in broken.stderr.decode()

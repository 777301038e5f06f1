"""Any edit of a row the ledger answers for is reported, with its case (issue 31: 3, 6).

The ledger hashes each decision, revocation and audit closure; ``verify`` also checks what the
chain implies of the columns it does not hash: a case's status, a revocation's fields, its
fraud bar, a closed task's status, and the employer's name against its registry answer.
Columns that no edit of can change a decision, a status or a supervision outcome are listed in
``HARMLESS`` with the reason; docs/security.md says the same.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select, text, update
from sqlalchemy.exc import DBAPIError

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from miaopi.records.tables import audit_tasks, cases, fraud_bars, ledger
from tests.conftest import DATA_KEY, ON_POSTGRES, RULES
from tests.e2e.test_ledger import Keys, fill

pytestmark = pytest.mark.anyio

# Columns whose edit changes nothing the ledger vouches for, and why.
HARMLESS = {
    ("cases", "seq"): "the row's position in lists; the case is found by its id",
    ("cases", "submitted_at"): "when the request arrived, for operators; decided_at is hashed",
    ("cases", "elapsed_ms"): "how long deciding took, for operators",
    ("cases", "access_code_hash"): "the applicant's code: reissued by design, on the history",
    ("cases", "applicant_id_hash"): "finds dry runs for the applicant's view, not the ledger's",
    ("cases", "employer_region"): "the district reports count by; the hashed evidence has it",
    ("audit_tasks", "seq"): "the task's position in lists",
    ("audit_tasks", "created_at"): "when the draw opened it, for the auditor's list",
    ("audit_tasks", "assigned_at"): "when an auditor was given it; reassigning is by design",
    ("audit_tasks", "due_date"): "supervision's reminder: the closure is hashed",
    ("audit_tasks", "employer_region"): "for the recusal of the next assignment only",
    ("audit_tasks", "period"): "the draw's month, recomputable from the case (verify_draw)",
    ("audit_tasks", "discrepancy"): "a re-check's note to the auditor; its closure is hashed",
    ("fraud_bars", "id"): "the row's own number",
    ("fraud_bars", "created_at"): "when the row was written; barred_on is the bar's date",
}
TABLES = {"cases": cases, "audit_tasks": audit_tasks, "fraud_bars": fraud_bars, "ledger": ledger}
EDITS = [
    (name, column.name)
    for name, table in TABLES.items()
    for column in table.columns
    if (name, column.name) not in HARMLESS
]


def _changed(value: Any) -> Any:
    """Another value of the same kind, as a tamperer would write it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    if isinstance(value, dict):
        return {**value, "edited": True}
    if isinstance(value, list):
        return [*value, {"edited": True}] if value else [{"edited": True}]
    return "x"


@pytest.mark.slow
async def test_every_edit_of_a_hashed_or_implied_column_is_reported_with_its_case(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    await fill(api, make_key)
    engine = container.database.engine
    assert verify(engine).intact
    with engine.connect() as conn:
        rows = {name: conn.execute(select(t)).all() for name, t in TABLES.items()}
        case_of_task = {t.id: t.case_id for t in rows["audit_tasks"]}
    closed = [t for t in rows["audit_tasks"] if t.status == "closed"]
    assert closed
    assert rows["fraud_bars"]

    caught: set[tuple[str, str]] = set()

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.sampled_from(EDITS), st.integers(min_value=0, max_value=10))
    def edit_is_caught(edit: tuple[str, str], pick: int) -> None:
        name, column = edit
        table: Table = TABLES[name]
        candidates = closed if name == "audit_tasks" else rows[name]
        row = candidates[pick % len(candidates)]
        old = getattr(row, column)
        new = _changed(old) if old is not None else _filled_in(table.c[column])
        key = table.c.seq if name in ("ledger", "cases", "audit_tasks") else table.c.id
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(table).where(key == row._mapping[key.name]).values({column: new})
                )
        except DBAPIError:  # a constraint (a foreign key, say) refuses it: no edit was made
            return
        try:
            verdict = verify(engine)
        finally:
            now_at = new if column == key.name else row._mapping[key.name]
            with engine.begin() as conn:
                conn.execute(update(table).where(key == now_at).values({column: old}))
        assert not verdict.intact, (name, column, old, new)
        caught.add(edit)
        if name == "ledger":  # an entry's own fields: the verdict names the entry
            assert verdict.broken_at is not None, (column, verdict)
            return
        case_id = {
            "cases": getattr(row, "id", None),
            "fraud_bars": getattr(row, "case_id", None),
            "audit_tasks": case_of_task.get(getattr(row, "id", None)),
        }[name]
        if (name, column) == ("fraud_bars", "case_id"):
            case_id = None  # moved to another case: either may be named
        assert case_id is None or verdict.case_id == case_id, (name, column, verdict)

    edit_is_caught()
    assert verify(engine).intact  # every edit was undone
    # The examples reached most columns, not only a few that the database let through.
    assert len(caught) >= len(EDITS) * 2 // 3, sorted(set(EDITS) - caught)


def _filled_in(column: Any) -> Any:
    """A value for a column that was empty, of the column's own kind."""
    name = type(column.type).__name__  # miaopi's own types decorate a stored form
    if "DateTime" in name:
        kind: type = datetime
    elif "JSON" in name:
        kind = dict
    else:
        try:
            kind = column.type.python_type
        except NotImplementedError:  # the sealed text
            kind = str
    samples = {datetime: datetime(2026, 11, 23, tzinfo=UTC), date: date(2026, 11, 23),
               int: 1, float: 1.0, bool: True, dict: {"edited": True}}  # fmt: skip
    return samples.get(kind, "x")


async def test_a_status_edited_in_place_is_reported(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    ids = await fill(api, make_key)
    rejected = ids[2]
    with container.database.engine.begin() as conn:
        conn.execute(update(cases).where(cases.c.id == rejected).values(status="approved"))
    verdict = verify(container.database.engine)
    assert verdict.case_id == rejected
    assert "status 'approved'" in verdict.reason


def _cli(database_url: str, cwd: Path) -> Any:
    env = {**os.environ, "MIAOPI_DATABASE_URL": database_url, "MIAOPI_DATA_KEY": DATA_KEY,
           "MIAOPI_RULES_DIR": str(RULES)}  # fmt: skip
    return anyio.run_process(
        [sys.executable, "-m", "miaopi.cli", "ledger", "verify"], env=env, check=False, cwd=cwd
    )


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL's foreign keys refuse it to its owner")
async def test_a_case_deleted_without_its_dependants_is_named_not_a_traceback(
    api: httpx.AsyncClient, make_key: Keys, container: Container, tmp_path: Path
) -> None:
    ids = await fill(api, make_key)
    engine = container.database.engine
    # Foreign keys are switched off outside a transaction only, as a tamperer would.
    with closing(sqlite3.connect(str(engine.url.database))) as raw:
        raw.execute("PRAGMA foreign_keys = OFF")
        raw.execute("DELETE FROM cases WHERE id = ?", (ids[0],))
        raw.commit()
    done = await _cli(str(container.database.engine.url), tmp_path)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert f"case {ids[0]}" in stderr
    assert "record is gone" in stderr


async def test_the_verifier_applies_no_migration(
    api: httpx.AsyncClient, make_key: Keys, container: Container, tmp_path: Path
) -> None:
    await fill(api, make_key)
    with container.database.engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    done = await _cli(str(container.database.engine.url), tmp_path)
    assert done.returncode == 2
    assert "apply the migrations first" in done.stderr.decode()
    with container.database.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0004"
    assert head != "0004"

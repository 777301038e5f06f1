"""Statements sent to the driver directly store exactly what SQLAlchemy would, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from miaopi.records.access_log import log_queries
from miaopi.records.clients import create_client
from miaopi.records.engines import reading_one
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import key_of
from miaopi.records.tables import cases, clients, registry_queries, rulesets
from miaopi.records.writing import after_commit, writing
from tests.integration.conftest import Where

ID_NUMBER = "420102200203151232"
insert_case = insert(cases)


def _case(engine: Engine, case_id: str) -> dict[str, Any]:
    client, _ = create_client(engine, "channel", "x")
    shanghai = timezone(timedelta(hours=8))
    return {
        "id": case_id,
        "status": "approved",
        "outcome": "approved",
        "business_type": "graduate",
        "applicant_name": "李明",
        "applicant_id_number": ID_NUMBER,
        "employer_uscc": "91440300MA5F1234X1",
        "employer_name": None,
        "submitted_by": client.id,
        "approval_number": None,
        "application_date": date(2026, 11, 22),
        "ruleset_fingerprint": "fp",
        "request": {"claims": {"diploma_no": "1055"}, "name": "李明"},
        "decision": {"outcome": "approved", "criteria": [{"id": "age", "passed": True}]},
        "evidence": [{"registry": "police", "record": {"name": "李明"}}],
        "submitted_at": datetime(2026, 11, 22, 9, 30, 1, 123456, tzinfo=shanghai),
        "decided_at": datetime(2026, 11, 22, 1, 30, 1, 223456, tzinfo=UTC),
        "elapsed_ms": 412.5,
    }


def _ruleset(engine: Engine) -> None:
    with writing(engine) as conn:
        conn.execute(
            insert(rulesets),
            {
                "fingerprint": "fp",
                "business_type": "graduate",
                "version": "1",
                "definition": {"criteria": []},
                "first_used_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
        )


def test_a_row_written_directly_reads_back_as_one_written_through_sqlalchemy(
    engine: Engine,
) -> None:
    _ruleset(engine)
    through_sqlalchemy, direct = _case(engine, "a" * 32), _case(engine, "b" * 32)
    direct["submitted_by"] = through_sqlalchemy["submitted_by"]
    with writing(engine) as conn:
        conn.execute(insert(cases), through_sqlalchemy)
        Prepared(insert(cases)).execute(conn, direct)
    with engine.connect() as conn:
        rows = {r.id: r._asdict() for r in conn.execute(select(cases))}
        raw = dict(conn.exec_driver_sql("SELECT id, applicant_id_number FROM cases").all())
    first, second = rows.pop("a" * 32), rows.pop("b" * 32)
    for row in (first, second):
        row.pop("id"), row.pop("seq")
    assert first == second
    assert second["applicant_id_number"] == ID_NUMBER
    assert second["submitted_at"] == direct["submitted_at"]
    assert second["request"] == direct["request"]
    assert raw["b" * 32].startswith("s1.")  # sealed at rest, not the number itself


def test_rows_read_directly_are_the_rows_sqlalchemy_reads(engine: Engine) -> None:
    _ruleset(engine)
    case = _case(engine, "d" * 32)
    with writing(engine) as conn:
        conn.execute(insert(cases), case)
    query = select(cases).where(cases.c.id == bindparam("id"))
    with engine.connect() as conn:
        through_sqlalchemy = conn.execute(query, {"id": case["id"]}).one()._asdict()
        [direct] = Prepared(query).rows(conn, {"id": case["id"]})
        missing = Prepared(query).first(conn, {"id": "e" * 32})
    assert direct._asdict() == through_sqlalchemy
    assert (direct.applicant_id_number, direct.application_date) == (ID_NUMBER, date(2026, 11, 22))
    assert missing is None


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_constraint_the_driver_reports_is_sqlalchemys_error_without_the_values(
    engine: Engine, where: Where, pipelined: bool
) -> None:
    # Pipelined on PostgreSQL, the failure is only read with the COMMIT.
    _ruleset(engine)
    case = _case(engine, "c" * 32)
    with writing(engine) as conn:
        Prepared(insert(cases)).execute(conn, case)

    def again(on: Engine) -> None:
        with writing(on, pipelined=pipelined) as conn:
            Prepared(insert(cases)).execute(conn, case)

    with pytest.raises(IntegrityError) as raised:
        where(again)
    assert ID_NUMBER not in str(raised.value)
    assert "s1." not in str(raised.value)
    with engine.connect() as conn:  # the failed transaction left nothing behind
        assert conn.execute(select(cases.c.id)).scalars().all() == ["c" * 32]


def test_values_the_statement_holds_itself_are_sent_with_the_given_ones(engine: Engine) -> None:
    districts = ("440303", "440304")
    auditors = [create_client(engine, "auditor", f"a {d}", district=d)[0] for d in districts]
    create_client(engine, "employer", "not an auditor", uscc="91440300MA5F1234X1")
    with engine.connect() as conn:
        outside = Prepared(
            select(clients.c.id).where(
                clients.c.role == "auditor",  # held by the statement, not given
                clients.c.district != bindparam("region"),
            )
        ).scalars(conn, {"region": "440303"})
    assert outside == [auditors[1].id]


def test_a_decisions_queries_are_stored_as_given_by_one_statement(
    engine: Engine, where: Where
) -> None:
    # The access log's rows of values, one statement (see access_log._insert), pipelined on
    # PostgreSQL as a case's transaction is: each row in its order, each value through its
    # column's own processing (the timestamps in UTC).
    at = datetime(2026, 11, 22, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    evidence = [
        {
            "registry": registry,
            "query": "person",
            "queried_at": (at + timedelta(milliseconds=n)).isoformat(),
            "elapsed_ms": 40.0 + n,
            "status": "ok",
            "attempts": 1 + n,
        }
        for n, registry in enumerate(("police", "credit", "education"))
    ]

    def log(engine: Engine) -> None:
        with writing(engine, pipelined=True) as conn:
            log_queries(conn, evidence, "dry_run", None, evaluation_id="e1",
                        id_number="420102200203151232")  # fmt: skip

    where(log)
    with engine.connect() as conn:
        stored = conn.execute(select(registry_queries).order_by(registry_queries.c.seq)).all()
    assert [r._asdict() for r in stored] == [
        {
            "seq": stored[0].seq + n,
            "case_id": None,
            "evaluation_id": "e1",
            "purpose": "dry_run",
            "requested_by": None,
            "registry": e["registry"],
            "query": "person",
            "queried_at": datetime.fromisoformat(e["queried_at"]).astimezone(UTC),
            "elapsed_ms": e["elapsed_ms"],
            "status": "ok",
            "attempts": e["attempts"],
            "subject_hash": key_of(engine.dialect).lookup_hash("420102200203151232"),
        }
        for n, e in enumerate(evidence)
    ]


def _insert_then_fail(engine: Engine, case: dict[str, Any], *, pipelined: bool) -> None:
    with writing(engine, pipelined=pipelined) as conn:
        Prepared(insert(cases)).execute(conn, case)
        raise ValueError("after the insert")


def test_sqlalchemys_own_statements_are_refused_in_a_pipelined_transaction(
    engine: Engine,
) -> None:
    # In psycopg's pipeline mode SQLAlchemy would read no rows from a SELECT; refused on both
    # databases, so a test on SQLite catches it as well.
    _ruleset(engine)
    case = _case(engine, "f" * 32)

    def insert_then_select() -> None:
        with writing(engine, pipelined=True) as conn:
            Prepared(insert(cases)).execute(conn, case)
            conn.execute(select(cases.c.id))

    with pytest.raises(RuntimeError, match="Prepared statements only"):
        insert_then_select()
    with writing(engine) as conn:  # the connection is an ordinary one again
        assert conn.execute(select(cases.c.id)).scalars().all() == []


def test_a_failure_after_statements_were_sent_ahead_takes_them_all_back(
    engine: Engine, where: Where
) -> None:
    _ruleset(engine)
    case = _case(engine, "f" * 32)
    with pytest.raises(ValueError, match="after the insert"):
        where(lambda on: _insert_then_fail(on, case, pipelined=True))

    def read(on: Engine) -> list[Any]:
        with writing(on, pipelined=True) as conn:
            return Prepared(select(cases.c.id)).scalars(conn, {})

    assert where(read) == []


def test_a_pipelined_transaction_reads_its_own_writes_and_commits_them(
    engine: Engine, where: Where
) -> None:
    _ruleset(engine)
    case = _case(engine, "f" * 32)

    def write_and_read(on: Engine) -> list[Any]:
        with writing(on, pipelined=True) as conn:
            Prepared(insert(cases)).execute(conn, case)
            return Prepared(select(cases.c.id, cases.c.applicant_id_number)).rows(conn, {})

    inside = where(write_and_read)
    with engine.connect() as conn:
        outside = conn.execute(select(cases.c.id, cases.c.applicant_id_number)).all()
    assert [tuple(r) for r in inside] == [tuple(r) for r in outside] == [("f" * 32, ID_NUMBER)]


def test_a_connection_that_served_a_single_read_is_transactional_again(engine: Engine) -> None:
    # On PostgreSQL the read runs outside a transaction; its connection goes back to the pool
    # and must not keep that mode, or the next case's statements would each commit alone.
    _ruleset(engine)
    with reading_one(engine) as conn:
        assert Prepared(select(cases.c.id)).scalars(conn, {}) == []
    case = _case(engine, "f" * 32)
    with pytest.raises(ValueError, match="after the insert"):
        _insert_then_fail(engine, case, pipelined=False)
    with engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).scalars().all() == []


def test_work_after_commit_runs_once_it_committed_and_never_after_a_rollback(
    engine: Engine, where: Where
) -> None:
    _ruleset(engine)
    case = _case(engine, "f" * 32)
    seen: list[Any] = []

    def insert(on: Engine, fail: bool) -> None:
        with writing(on, pipelined=True) as conn:
            read = Prepared(insert_case.returning(cases.c.id)).sent(conn, case)
            after_commit(conn, lambda: seen.append(read()))
            if fail:
                raise ValueError("before the commit")

    with pytest.raises(ValueError, match="before the commit"):
        where(lambda on: insert(on, fail=True))
    assert seen == []
    where(lambda on: insert(on, fail=False))
    assert seen == ["f" * 32]

"""PostgreSQL and a peer that stops answering without closing the connection. A server gone
silent: a request waits a bounded time for it (then 503 database-unavailable), not the minutes
TCP takes to give up. A client gone silent mid-transaction: the server ends its session, and
the locks every decision waits for with it, not the hours its keepalives take to notice."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from miaopi.bootstrap import open_database
from miaopi.records import cases
from miaopi.records.database import Database
from miaopi.records.engines import make_engine
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, ON_POSTGRES, run_on_the_loop


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that takes connections into its backlog and never says a word on them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"postgresql+psycopg://miaopi@127.0.0.1:{listener.getsockname()[1]}/miaopi"


def _seconds_to_fail(connect: object) -> float:
    started = time.monotonic()
    with pytest.raises(OperationalError):
        connect()  # type: ignore[operator]
    return time.monotonic() - started


def test_a_connection_to_a_silent_server_gives_up_after_five_seconds(silent_server: str) -> None:
    engine = make_engine(silent_server)
    try:
        assert 4 <= _seconds_to_fail(engine.connect) < 9
    finally:
        engine.dispose()


def test_the_url_may_give_its_own_connect_timeout(silent_server: str) -> None:
    engine = make_engine(f"{silent_server}?connect_timeout=2")
    try:
        assert _seconds_to_fail(engine.connect) < 4
    finally:
        engine.dispose()


def test_work_on_the_loop_gives_up_on_a_silent_server_too(silent_server: str) -> None:
    store = Database(f"{silent_server}?connect_timeout=2")
    try:
        reading = partial(run_on_the_loop, store, cases.find_idempotent, 1, "k")
        assert _seconds_to_fail(reading) < 4
    finally:
        store.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="a real server's connection")
def test_a_real_servers_connection_carries_both_bounds(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert params["tcp_user_timeout"] == "10000"
    assert params["connect_timeout"] == "5"


def _idle_timeout(conn: Any) -> str:
    return conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar()


def _idle_timeout_on_reuse(engine: Engine) -> str:
    """As a connection back from the pool has it (its first use's transaction rolled back)."""
    _with(engine, _idle_timeout)
    return _with(engine, _idle_timeout)


@pytest.mark.skipif(not ON_POSTGRES, reason="a real server's sessions")
def test_every_connection_has_its_idle_transactions_ended_by_the_server(
    database_url: str,
) -> None:
    store = Database(database_url)
    try:
        assert _idle_timeout_on_reuse(store.engine) == "10s"
        assert run_on_the_loop(store, _idle_timeout_on_reuse) == "10s"
    finally:
        store.dispose()


def _with(engine: Engine, read: Any) -> Any:
    with engine.connect() as conn:
        return read(conn)


@pytest.mark.slow
@pytest.mark.skipif(not ON_POSTGRES, reason="a real server's sessions")
def test_a_transaction_abandoned_with_the_ledger_locked_does_not_stop_decisions(
    database_url: str,
) -> None:
    engine = open_database(
        Settings(database_url=database_url, data_key=DATA_KEY, _env_file=None)
    ).engine  # type: ignore[call-arg]
    head = "SELECT last_seq FROM ledger_head WHERE id = 1 FOR UPDATE"
    try:
        frozen = engine.connect()  # a process cut off mid-decision: its lock held, then silence
        frozen.begin()
        frozen.exec_driver_sql(head)
        started = time.monotonic()
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
            conn.exec_driver_sql(head)  # waits until the server ends the frozen session
        assert 9 <= time.monotonic() - started < 20
        with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):  # ended by the server
            frozen.exec_driver_sql("SELECT 1")
        frozen.invalidate()
    finally:
        engine.dispose()

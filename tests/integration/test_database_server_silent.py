"""A PostgreSQL server that stops answering without closing the connection: a request waits a
bounded time for it (then 503 database-unavailable), not the minutes TCP takes to give up."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from miaopi.records import cases, db
from miaopi.records.db import make_engine
from tests.conftest import ON_POSTGRES


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
    engine = make_engine(f"{silent_server}?connect_timeout=2")

    async def scenario() -> None:
        db.open_on_this_loop(engine)
        try:
            await db.run(engine, cases.find_idempotent, 1, "k")
        finally:
            await db.close_on_this_loop(engine)

    try:
        assert _seconds_to_fail(lambda: anyio.run(scenario)) < 4
    finally:
        engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="a real server's connection")
def test_a_statement_unacknowledged_for_ten_seconds_ends_its_connection(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert params["tcp_user_timeout"] == "10000"
    assert params["connect_timeout"] == "5"

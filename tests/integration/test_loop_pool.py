"""The event loop's PostgreSQL connections, when the server drops them (a restart, a failover).

A request's statements on PostgreSQL run over a pool of the event loop's own. Its connections are
not pinged at every checkout (a round trip per unit of work); these tests hold it to what a
client of the service must still be able to count on.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from miaopi.records import cases, db
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="the loop's own pool is PostgreSQL's")

OTHER_SESSIONS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _drop_every_other_session(engine: Engine) -> int:
    """End every session of the test's database but the caller's, as a restart would."""
    # Autocommit: within one transaction pg_stat_activity answers from the same snapshot.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        ended = conn.exec_driver_sql(f"SELECT count(pg_terminate_backend(pid)) {OTHER_SESSIONS}")
        count = ended.scalar_one()
        deadline = time.monotonic() + 10
        while conn.exec_driver_sql(f"SELECT count(*) {OTHER_SESSIONS}").scalar_one():
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.01)
    return count


def _reads_after_a_restart(engine: Engine, pause_s: float) -> tuple[int, list[str]]:
    """Fill the loop's pool, end its sessions, wait ``pause_s``, then read six times in turn:
    how many sessions ended, and each read's outcome."""

    async def scenario() -> tuple[int, list[str]]:
        db.open_on_this_loop(engine)
        try:
            # Several connections in the pool, each just used.
            await asyncio.gather(
                *(db.run(engine, cases.find_idempotent, 1, f"k{n}") for n in range(6))
            )
            dropped = _drop_every_other_session(engine)
            await asyncio.sleep(pause_s)
            return dropped, [await _read(engine) for _ in range(6)]
        finally:
            await db.close_on_this_loop(engine)

    return anyio.run(scenario)


async def _read(engine: Engine) -> str:
    try:
        await db.run(engine, cases.find_idempotent, 1, "k")
    except DBAPIError:
        return "error"
    return "ok"


def test_connections_the_server_dropped_while_they_sat_idle_are_opened_again_before_use(
    engine: Engine,
) -> None:
    # Longer than a connection back in the pool is trusted without a ping.
    dropped, outcomes = _reads_after_a_restart(engine, pause_s=0.6)
    assert dropped >= 2  # the loop's pool held more than one connection
    assert outcomes == ["ok"] * 6


def test_once_a_dropped_connection_fails_a_request_the_next_ones_do_not_fail(
    engine: Engine,
) -> None:
    # Right after a restart, a connection used a moment ago is taken without a ping and the
    # first statement on it fails; the pool then checks every connection returned before that.
    dropped, outcomes = _reads_after_a_restart(engine, pause_s=0)
    assert dropped >= 2
    assert outcomes[1:] == ["ok"] * 5, outcomes

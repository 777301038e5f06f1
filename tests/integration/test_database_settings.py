"""The PostgreSQL settings an operator sizes a fleet with: the connections each server process
keeps for its requests, prepared statements off for a pooler that cannot carry them, how long
work waits for a lock; and the histogram that shows requests waiting for a connection."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from miaopi.bootstrap import open_database
from miaopi.records import cases
from miaopi.records.database import Database
from miaopi.records.engines import reading_one
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, ON_POSTGRES, run_on_the_loop, session_count

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="the settings are PostgreSQL's")


def _open(database_url: str, **settings: object) -> Database:
    return open_database(
        Settings(database_url=database_url, data_key=DATA_KEY, _env_file=None, **settings)  # type: ignore[arg-type]
    )


def _sessions_after_reads_at_once(store: Database, database_url: str, reads: int) -> int:
    """Run ``reads`` reads at once on the loop's pool; the sessions it then holds open."""

    async def scenario() -> int:
        store.open_on_this_loop()
        try:
            await asyncio.gather(
                *(store.run(cases.find_idempotent, 1, f"k{i}") for i in range(reads))
            )
            return session_count(make_url(database_url).database or "")
        finally:
            await store.close_on_this_loop()

    store.dispose()  # the migrations' connection: what is left is the loop's pool
    return anyio.run(scenario)


def test_a_server_process_keeps_no_more_connections_than_its_pool_size(
    database_url: str,
) -> None:
    store = _open(database_url, database_pool_size=3)
    try:
        assert _sessions_after_reads_at_once(store, database_url, reads=8) == 3
    finally:
        store.dispose()


def test_by_default_reads_at_once_each_get_a_connection(database_url: str) -> None:
    store = _open(database_url)
    try:
        assert _sessions_after_reads_at_once(store, database_url, reads=8) == 8
    finally:
        store.dispose()


def _prepared_after_six_reads(engine: Engine) -> int:
    """Read six times on one connection, then count what the server holds prepared for it."""
    with reading_one(engine) as conn:
        for i in range(6):  # psycopg prepares after five
            cases._FIND_IDEMPOTENT.first(conn, {"client_id": 1, "key": f"k{i}"})
        return conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one()


@pytest.mark.parametrize("where", ["thread", "event loop"])
@pytest.mark.parametrize("prepared", [True, False])
def test_statements_are_prepared_on_the_server_unless_the_setting_says_not(
    database_url: str, where: str, prepared: bool
) -> None:
    store = _open(database_url, database_prepared_statements=prepared)
    try:
        held = (
            _prepared_after_six_reads(store.engine)
            if where == "thread"
            else run_on_the_loop(store, _prepared_after_six_reads)
        )
    finally:
        store.dispose()
    assert (held > 0) is prepared


def _waits() -> tuple[float, float]:
    """How many units of work the wait histogram has counted, and their waits in all."""
    count = REGISTRY.get_sample_value("miaopi_database_wait_seconds_count") or 0.0
    return count, REGISTRY.get_sample_value("miaopi_database_wait_seconds_sum") or 0.0


def test_work_that_finds_every_connection_in_use_waits_and_the_wait_is_measured(
    database_url: str,
) -> None:
    store = _open(database_url, database_pool_size=1)

    def slow_read(engine: Engine) -> None:
        with reading_one(engine) as conn:
            conn.exec_driver_sql("SELECT pg_sleep(0.3)")

    async def two_at_once() -> None:
        store.open_on_this_loop()
        try:
            await asyncio.gather(store.run(slow_read), store.run(slow_read))
        finally:
            await store.close_on_this_loop()

    count, total = _waits()
    try:
        anyio.run(two_at_once)
    finally:
        store.dispose()
    waited_count, waited_total = _waits()
    assert waited_count - count == 2  # every unit of work is counted, the one that had no wait too
    assert 0.25 <= waited_total - total < 2  # the second waited for the first's connection


def _lock_timeout(engine: Engine) -> str:
    with reading_one(engine) as conn:
        return conn.exec_driver_sql("SHOW lock_timeout").scalar_one()


def test_work_gives_up_on_a_lock_after_the_setting_and_a_migration_does_not(
    database_url: str,
) -> None:
    store = _open(database_url, database_lock_timeout_s=0.2)
    try:
        assert _lock_timeout(store.engine) == "200ms"
        assert run_on_the_loop(store, _lock_timeout) == "200ms"
        # Another instance migrating: the one that starts meanwhile waits for it, however long.
        with store.engine.connect() as migrating:
            migrating.exec_driver_sql("SELECT pg_advisory_lock(44030001)")
            done = threading.Timer(
                1, lambda: migrating.exec_driver_sql("SELECT pg_advisory_unlock(44030001)")
            )
            done.start()
            started = time.monotonic()
            try:
                _open(database_url, database_lock_timeout_s=0.2).dispose()
            finally:
                done.join()
            assert time.monotonic() - started >= 0.9
    finally:
        store.dispose()

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select

from miaopi.records.clients import create_client
from miaopi.records.database import Database
from miaopi.records.engines import make_engine
from miaopi.records.migrate import upgrade
from miaopi.records.sealing import DataKey
from miaopi.records.tables import clients, metadata
from miaopi.records.writing import writing
from tests.conftest import DATA_KEY


def test_migrations_make_exactly_the_schema_the_code_uses(database_url: str) -> None:
    engine = make_engine(database_url, DataKey(DATA_KEY))
    upgrade(engine)
    upgrade(engine)  # idempotent at head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/w.db", DataKey(DATA_KEY))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def _client_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(clients.c.name)).scalars())


@pytest.mark.anyio
@pytest.mark.parametrize("holder", ["thread", "process"])
async def test_a_short_write_waits_for_another_writer_without_stopping_the_loop(
    tmp_path: Path, holder: str
) -> None:
    """On SQLite ``Database.run`` writes on the loop's thread, but never makes the loop wait."""
    database = tmp_path / "w.db"
    store = Database(f"sqlite:///{database}", DataKey(DATA_KEY))
    engine = store.engine
    upgrade(engine)
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        if holder == "thread":
            with writing(engine):
                held.set()
                release.wait(10)
            return
        # Another process's writer: its own open file description of the queue file.
        fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.set()
            release.wait(10)
        finally:
            os.close(fd)

    other = threading.Thread(target=other_writer)
    other.start()
    assert held.wait(10)
    threads: list[int] = []

    def work(engine: Engine) -> str:
        threads.append(threading.get_ident())
        create_client(engine, "channel", "written once")
        return "done"

    waits = REGISTRY.get_sample_value("miaopi_database_wait_seconds_sum") or 0.0
    try:
        task = asyncio.ensure_future(store.run(work))
        await asyncio.sleep(0.2)  # the loop keeps running while the work waits its turn
        assert not task.done()
        tries_while_held = len(threads)
        release.set()
        assert await asyncio.wait_for(task, 10) == "done"
    finally:
        release.set()
        other.join()
    # Tried on the loop, again after pauses, never on a thread: there it would hold the write
    # slot while waiting for the GIL, and every writer of every other process behind it.
    assert set(threads) == {threading.get_ident()}
    assert 2 <= tries_while_held <= 40  # paused between tries: 0.2 s is not a busy loop
    assert _client_names(engine) == ["written once"]
    # How long it waited is in /metrics, where an operator sees workers queue for the database.
    waited = (REGISTRY.get_sample_value("miaopi_database_wait_seconds_sum") or 0.0) - waits
    assert 0.2 <= waited < 5
    engine.dispose()


@pytest.mark.anyio
async def test_a_short_write_on_a_free_database_commits_on_the_loop(tmp_path: Path) -> None:
    store = Database(f"sqlite:///{tmp_path}/w.db", DataKey(DATA_KEY))
    engine = store.engine
    upgrade(engine)
    threads: list[int] = []

    def work(engine: Engine) -> None:
        threads.append(threading.get_ident())
        create_client(engine, "channel", "first")
        create_client(engine, "channel", "second")  # a second transaction in the same work

    await store.run(work)
    assert threads == [threading.get_ident()]
    assert sorted(_client_names(engine)) == ["first", "second"]
    engine.dispose()

"""SQLite's WAL checkpoints while the service serves: made by a thread, never by a case's commit
on the event loop (records/wal.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from miaopi.records.database import Database
from miaopi.records.migrate import upgrade
from miaopi.records.sealing import DataKey
from miaopi.records.wal import Checkpointer
from miaopi.records.writing import write_slot, writing
from tests.conftest import DATA_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    store = Database(f"sqlite:///{tmp_path}/w.db", DataKey(DATA_KEY))
    upgrade(store.engine)
    with writing(store.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE filler (b BLOB)")
    yield store
    store.dispose()


@pytest.fixture
def engine(store: Database) -> Engine:
    return store.engine


def _fill(engine: Engine, pages: int) -> int:
    """Commit about ``pages`` pages; return the connection's autocheckpoint setting."""
    with writing(engine) as conn:
        for _ in range(pages):
            conn.exec_driver_sql("INSERT INTO filler VALUES (zeroblob(4000))")
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _file_size(engine: Engine) -> int:
    return Path(str(engine.url.database)).stat().st_size


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "miaopi-checkpoints"]


async def test_while_serving_a_commit_on_the_loop_never_checkpoints(
    store: Database, engine: Engine
) -> None:
    store.open_on_this_loop()
    try:
        size = _file_size(engine)
        # SQLite's own default would checkpoint in this commit: 1,500 pages > 1,000.
        assert await store.run(_fill, 1500) == 0
        assert _file_size(engine) == size  # the pages are in the log only
        assert len(_checkpoint_threads()) == 1
        for _ in range(200):  # the thread checkpoints every 0.2 s: 10 s at most
            if _file_size(engine) > size + 1500 * 4000:
                break
            await asyncio.sleep(0.05)
        assert _file_size(engine) > size + 1500 * 4000  # copied by the thread
    finally:
        await store.close_on_this_loop()
    assert _checkpoint_threads() == []
    # Once the service stops serving, connections checkpoint on their own again.
    assert _fill(engine, 1) == 1000


def test_a_long_log_is_copied_to_its_end_holding_the_write_slot(engine: Engine) -> None:
    """Under steady writes a passive checkpoint never gets to the end of the log; above
    ``most_frames`` pages the checkpointer waits for the write slot and copies the rest."""
    checkpointer = Checkpointer(engine, write_slot(engine).turn, most_frames=50)
    with closing(sqlite3.connect(str(engine.url.database), check_same_thread=False)) as own:
        own.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the migrations' pages out of the log
        for pages, needs_slot in ((20, False), (200, True)):
            _fill(engine, pages)
            held, release = threading.Event(), threading.Event()

            def writer(held: threading.Event, release: threading.Event) -> None:
                with writing(engine):
                    held.set()
                    release.wait(10)

            holder = threading.Thread(target=writer, args=(held, release))
            holder.start()
            held.wait(10)
            checkpointing = threading.Thread(target=checkpointer.checkpoint, args=(own,))
            try:
                checkpointing.start()
                checkpointing.join(0.5)
                assert checkpointing.is_alive() == needs_slot
            finally:
                release.set()
                holder.join(10)
                checkpointing.join(10)
            assert not checkpointing.is_alive()


async def test_a_failed_checkpoint_is_logged_and_tried_again(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    slot_taken: list[bool] = []

    @contextmanager
    def write_slot() -> Iterator[None]:
        slot_taken.append(len(slot_taken) > 0)
        if not slot_taken[-1]:
            raise OSError("the write slot's lock file is gone")
        yield

    checkpointer = Checkpointer(engine, write_slot, every_s=0.05, most_frames=0)
    checkpointer.start()
    try:
        _fill(engine, 100)
        for _ in range(200):
            if True in slot_taken:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(checkpointer.stop)
    assert slot_taken[:2] == [False, True]  # the round after the failure took the slot
    assert "checkpoint of the write-ahead log failed" in caplog.text
    assert "the write slot's lock file is gone" in caplog.text

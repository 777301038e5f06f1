"""SQLite's WAL checkpoints, made by a thread of their own instead of by the event loop.

By default SQLite checkpoints in the COMMIT that takes the write-ahead log past 1,000 pages: it
copies the log into the database file and waits for the disk. While the service serves, that
COMMIT is a case's, run on the event loop (``Database.run``), so every request in flight waited
with it, about once a second at 100 decisions/s: most of the p99 overhead (bench/HISTORY.md).

While the service serves, its connections leave checkpoints to a ``Checkpointer``: a thread that
checkpoints every 0.2 s in SQLite's passive mode, which copies what it can without waiting for
any reader or writer, and waits for the disk with the GIL released. Only a log copied to its
end starts again from its beginning (at the next writer), and under steady writes a passive
checkpoint seldom gets there, since what is committed while it runs is left for the next one:
with passive checkpoints alone the log grew to 580 MB in one benchmark. So when the log holds
more than ``most_frames`` pages, the thread checkpoints once more holding the write slot
(``writing.WriteSlot``), so that no writer adds to the log meanwhile, and the next writer starts
it again. Work on the loop that finds the slot taken pauses without stopping the loop and tries
again (``Database.run``); only the writes of those few milliseconds wait.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, event

from miaopi.telemetry.metrics import CHECKPOINT_SECONDS, WAL_PAGES, series

log = logging.getLogger("miaopi.records")

# Every 0.2 s: at 100 decisions/s a checkpoint copies ~200 pages, a few milliseconds of work.
EVERY_S = 0.2
# SQLite's own bound (wal_autocheckpoint): 1,000 pages of 4 kB. A longer log made the p99 worse,
# not better (bench/HISTORY.md): the copy that holds the slot grows with it.
MOST_FRAMES = 1000


class Checkpointer:
    """Checkpoints the WAL of the engine's SQLite file from a thread of its own; ``write_slot``
    holds the database's only write slot (``writing.WriteSlot.turn``)."""

    def __init__(
        self,
        engine: Engine,
        write_slot: Callable[[], AbstractContextManager[None]],
        *,
        every_s: float = EVERY_S,
        most_frames: int = MOST_FRAMES,
    ) -> None:
        database = engine.url.database
        if not database or database == ":memory:":
            raise ValueError("only a database file has a write-ahead log")
        self.path = database
        self.engine = engine
        self.write_slot = write_slot
        self.every_s = every_s
        self.most_frames = most_frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="miaopi-checkpoints", daemon=True)

    def start(self) -> None:
        """From now on, the engine's connections leave checkpoints to this thread."""
        event.listen(self.engine, "connect", _no_autocheckpoint)
        # Connections opened before (migrations, startup) checkpoint on their own: open anew.
        self.engine.dispose()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; connections opened from now on checkpoint on their own again."""
        self._stop.set()
        self._thread.join()
        event.remove(self.engine, "connect", _no_autocheckpoint)
        self.engine.dispose()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        started = time.perf_counter()
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= 0:  # -1: another process's checkpoint was running
            WAL_PAGES.set(frames)
        series(CHECKPOINT_SECONDS, "false").observe(time.perf_counter() - started)
        if frames > self.most_frames:
            with self.write_slot():
                started = time.perf_counter()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                series(CHECKPOINT_SECONDS, "true").observe(time.perf_counter() - started)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # as the service's connections (db.py)
            while not self._stop.wait(self.every_s):
                try:
                    self.checkpoint(conn)
                except Exception:
                    # Whatever failed (the disk, the write slot's lock file), the thread must
                    # live to try again next round: without it the log only grows.
                    log.exception("checkpoint of the write-ahead log failed")
        finally:
            conn.close()


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

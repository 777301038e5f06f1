"""The database as one object: its engine, data key, lock bound, and where its work runs.

``Database.run`` decides where a short unit of work (one case's statements) runs: on SQLite,
on the event loop's own thread, because handing it to a thread cost far more than the
statements; on PostgreSQL, whose every statement is a round trip, on the loop too, in a
greenlet over psycopg's asyncio connections, which waits for each answer without stopping the
loop. Work whose size depends on the data (pages, exports, the ledger's verification) runs on
a thread (``run_in_thread``). Measurements behind both choices are in bench/HISTORY.md.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn

from miaopi.records.engines import (
    LOCK_TIMEOUT_S,
    LOOP_POOL,
    LOOP_POOL_SIZE,
    PING_AFTER_IDLE_S,
    RETURNED_AT,
    bound_sessions,
    connect_args,
    make_engine,
    statement_threads,
)
from miaopi.records.sealing import DataKey, bind_key, json_text
from miaopi.records.wal import Checkpointer
from miaopi.records.writing import WriterBusy, inline_work, refuse_unprepared, write_slot
from miaopi.telemetry.metrics import DATABASE_WAIT_SECONDS

# How long work on the loop pauses before it tries SQLite's write slot again: short, because
# a case holds it for about a millisecond; growing, so that a long holder is not polled hard.
_FIRST_PAUSE_S, _LAST_PAUSE_S = 0.0005, 0.008

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class _OnLoop:
    """An engine's pool on one event loop, and the turns its work takes at it."""

    engine: AsyncEngine
    # One turn per connection, handed out in the order asked for: waiting in the pool itself,
    # work that had waited lost its connection to work that had just arrived (asyncio's queue
    # lets a newcomer take what was put back before the waiter it woke runs), and at
    # concurrency 64 with 20 connections p99 was 2.9 s against p50 0.8 s (1.3 s with 64).
    turns: asyncio.Semaphore


class Database:
    """One database as this process uses it.

    It holds the engine (whose SQLite file's write slot travels with it, ``writing.py``), the
    data key that seals personal data, how long work waits for a lock, the connection pools
    that event loops keep of their own (PostgreSQL), and the checkpointer of a SQLite file.
    """

    def __init__(
        self,
        url: str,
        key: DataKey | None = None,
        *,
        pool_size: int = LOOP_POOL_SIZE,
        prepared_statements: bool = True,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.engine = make_engine(
            url, key, prepared_statements=prepared_statements, lock_timeout_s=lock_timeout_s
        )
        self.key = key
        self.lock_timeout_s = lock_timeout_s
        # The loop's own pool: a fixed size makes work wait its turn instead of opening
        # connections beyond it; the one returned last is handed out first.
        self._loop_pool: dict[str, Any] = {
            **LOOP_POOL,
            "pool_size": pool_size,
            "connect_args": connect_args(make_url(url), prepared_statements),
        }
        self._on_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop] = (
            weakref.WeakKeyDictionary()
        )
        self._checkpointer: Checkpointer | None = None
        self._opens = 0
        self._checkpoints_lock = threading.Lock()  # opened on the loop, closed on a thread


    def statement_threads(self) -> int:
        return statement_threads(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    async def run(
        self, work: Callable[Concatenate[Engine, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(engine, *args)``: one short unit of database work, such as a case's.

        On SQLite it runs here, on the event loop's thread. When another writer (another worker
        process, or a thread) holds the file, the work gives its place up, pauses without
        stopping the loop, and tries again, for up to the lock timeout (then
        ``OperationalError``, SQLite's busy). So ``work`` must do nothing before its first
        write transaction that it cannot do twice (reads are fine), and little there: it is
        done again at every try (a case comes encoded, ``cases.NewCase``).

        On PostgreSQL, where the loop has its own connections (``open_on_this_loop``: the
        app's lifespan), the work runs on the loop in a greenlet that waits for each answer
        without stopping the loop; elsewhere (the CLI, a bare app in a test) on a thread.

        How long work waited before it ran, for a connection or for the write slot, is the
        histogram ``miaopi_database_wait_seconds``: a pool too small for the load shows there.
        """
        engine = self.engine
        if engine.dialect.name != "sqlite":
            on_loop = self._on_loops.get(asyncio.get_running_loop())
            if on_loop is None:
                return await anyio.to_thread.run_sync(lambda: work(engine, *args, **kwargs))
            asked = time.perf_counter()
            async with on_loop.turns:
                DATABASE_WAIT_SECONDS.observe(time.perf_counter() - asked)
                sync_engine = on_loop.engine.sync_engine
                return await greenlet_spawn(lambda: work(sync_engine, *args, **kwargs))
        state = inline_work.__dict__
        pause = _FIRST_PAUSE_S
        asked = tried = time.perf_counter()
        bound = self.lock_timeout_s
        while True:
            state.update(active=True, wrote=False)
            try:
                done = work(engine, *args, **kwargs)
            except WriterBusy:
                pass
            else:
                DATABASE_WAIT_SECONDS.observe(tried - asked)
                return done
            finally:
                state.update(active=False, wrote=False)
            if time.perf_counter() - asked >= bound:
                raise _slot_not_had(bound)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LAST_PAUSE_S)
            tried = time.perf_counter()

    async def run_in_thread(
        self, work: Callable[Concatenate[Engine, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(engine, *args)`` on a statement thread: for work whose size depends on the
        data (a page, an export, a re-check batch), which would hold the loop too long."""
        engine = self.engine
        return await anyio.to_thread.run_sync(lambda: work(engine, *args, **kwargs))

    def open_on_this_loop(self) -> None:
        """From now on ``run`` does this database's work on the running event loop.

        That is PostgreSQL through psycopg: the loop gets a pool of psycopg's asyncio
        connections of its own. On a SQLite file, whose work already runs on the loop, a thread
        makes the checkpoints that a case's COMMIT would otherwise make there (wal.py). Whoever
        opens must await ``close_on_this_loop`` (the app's lifespan does both).
        """
        engine = self.engine
        if engine.dialect.name == "sqlite":
            self._start_checkpoints()
            return
        if engine.dialect.driver != "psycopg":
            return
        loop = asyncio.get_running_loop()
        if loop in self._on_loops:
            return
        pool = create_async_engine(engine.url, json_serializer=json_text, **self._loop_pool)
        _ping_when_stale(pool.sync_engine)
        event.listen(pool.sync_engine, "connect", bound_sessions(self.lock_timeout_s))
        event.listen(pool.sync_engine, "before_cursor_execute", refuse_unprepared)
        if self.key is not None:
            bind_key(pool.sync_engine, self.key)
        # Work holds one connection at a time (a unit of work is one transaction after another).
        self._on_loops[loop] = _OnLoop(pool, asyncio.Semaphore(self._loop_pool["pool_size"]))

    async def close_on_this_loop(self) -> None:
        """Close what ``open_on_this_loop`` opened for the running loop, if anything."""
        if self.engine.dialect.name == "sqlite":
            await anyio.to_thread.run_sync(self._stop_checkpoints)
            return
        on_loop = self._on_loops.pop(asyncio.get_running_loop(), None)
        if on_loop is not None:
            await on_loop.engine.dispose()

    def _start_checkpoints(self) -> None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        with self._checkpoints_lock:
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(self.engine, write_slot(self.engine).turn)
                self._checkpointer.start()
            self._opens += 1  # a test may open twice

    def _stop_checkpoints(self) -> None:
        with self._checkpoints_lock:
            running = self._checkpointer
            if running is None:
                return
            self._opens -= 1
            if self._opens > 0:
                return
            self._checkpointer = None
        running.stop()


def _slot_not_had(waited_s: float) -> OperationalError:
    """SQLite's own error for a database busy past its timeout (the API answers it with 503)."""
    busy = sqlite3.OperationalError(f"database is locked: no write slot within {waited_s:g} s")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    busy.sqlite_errorname = "SQLITE_BUSY"
    return OperationalError("BEGIN IMMEDIATE", None, busy)


def _ping_when_stale(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it may have gone stale.

    That is when it has sat in the pool for ``PING_AFTER_IDLE_S`` or more, or when another
    connection of the pool was found broken after it came back (a server that restarts drops
    them all; a decision's statements go to the driver directly, so SQLAlchemy's own handling
    of a lost connection, which would mark the whole pool, never sees their errors). A ping that
    fails marks the whole pool, as SQLAlchemy's pre-ping does, and the connection is opened
    again. The pre-ping at every checkout was a round trip of its own for each of a decision's
    three units of work, which nothing else could travel with.
    """
    broken_at = [float("-inf")]  # when a connection of this pool was last found broken
    errors = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "invalidate")
    def _found_broken(_dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        broken_at[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(RETURNED_AT)
        if returned is None:  # opened for this checkout (a reconnection empties ``info``)
            return
        if returned > broken_at[0] and time.monotonic() - returned < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except errors as exc:
            raise InvalidatePoolError(f"a pooled connection did not answer: {exc}") from exc

"""Where a unit of database work runs: ``run``, and the event loop's own connections.

``run`` decides where a short unit of work (one case's statements) runs: on SQLite, on the
event loop's own thread, because handing it to a thread cost far more than the statements; on
PostgreSQL, whose every statement is a round trip, on the loop too, in a greenlet over
psycopg's asyncio connections, which waits for each answer without stopping the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn

from miaopi.records.engines import (
    LOCK_TIMEOUT_S,
    PING_AFTER_IDLE_S,
    RETURNED_AT,
    bound_sessions,
    lock_timeouts,
    loop_pools,
)
from miaopi.records.sealing import bind_key, bound_key, json_text
from miaopi.records.wal import Checkpointer
from miaopi.records.writing import (
    WriterBusy,
    inline_work,
    queues_lock,
    refuse_unprepared,
    writer_queue_locked,
)
from miaopi.telemetry import DATABASE_WAIT_SECONDS

# How long work on the loop pauses before it tries SQLite's write slot again: short, because
# a case holds it for about a millisecond; growing, so that a long holder is not polled hard.
_FIRST_PAUSE_S, _LAST_PAUSE_S = 0.0005, 0.008

P = ParamSpec("P")
T = TypeVar("T")


async def run(
    engine: Engine, work: Callable[Concatenate[Engine, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``work(engine, *args)``: one short unit of database work, such as one case's statements.

    On SQLite it runs right here, on the event loop's thread. Its statements take tens of
    microseconds each; a hand-off to a statement thread and back cost more than all of them,
    and under load the two threads traded the GIL at every statement: scripts/bench measured
    51 -> 88 decisions/s and 18.5 -> 11.2 ms of CPU per decision. When another writer (another
    worker process, or a thread) holds the database, the work gives its place up, pauses
    without stopping the loop, and tries again on the loop, for up to the engine's lock timeout
    (then ``OperationalError``, SQLite's busy); for that, ``work`` must not do anything before
    its first write transaction that it cannot do twice (reads are fine), and had better do
    little there: it is done again at every try (a case comes encoded, ``cases.NewCase``). It
    used to wait for its turn on a statement thread, and there held the write slot while the
    thread waited for the GIL at every statement, so every writer of the other processes
    queued behind it: with 2 workers, interleaved runs of scripts/bench made 110 and 134
    decisions/s at 10.3 and 9.5 ms of CPU per decision that way, 190 and 208/s at 8.0 and 7.3
    ms this way. Work whose size depends on the data (pages, exports, the ledger's
    verification) keeps using a thread.

    On PostgreSQL every statement is a network round trip. Where the loop has its own
    connections (``open_on_this_loop``: the app's lifespan), the work runs on the loop too, in
    a greenlet that waits for each answer without stopping the loop (SQLAlchemy's asyncio
    bridge; the same code as elsewhere). On a statement thread, the thread and the loop traded
    the GIL at every answer: interleaved runs of scripts/bench, one worker, measured 47 and
    64 decisions/s at 13.8 and 13.9 ms of CPU per decision there, 99 and 81/s at 9.4 and
    11.6 ms on the loop. Elsewhere (the CLI, a bare app in a test) it runs on a thread.

    How long work on the loop waited before it ran, for a connection or for the write slot, is
    the histogram ``miaopi_database_wait_seconds``: a pool too small for the load shows there.
    """
    if engine.dialect.name != "sqlite":
        loops = _on_loops.get(engine)
        on_loop = None if loops is None else loops.get(asyncio.get_running_loop())
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
    bound = lock_timeouts.get(engine, LOCK_TIMEOUT_S)
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


def _slot_not_had(waited_s: float) -> OperationalError:
    """SQLite's own error for a database busy past its timeout (the API answers it with 503)."""
    busy = sqlite3.OperationalError(f"database is locked: no write slot within {waited_s:g} s")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    busy.sqlite_errorname = "SQLITE_BUSY"
    return OperationalError("BEGIN IMMEDIATE", None, busy)


@dataclass(frozen=True)
class _OnLoop:
    """An engine's pool on one event loop, and the turns its work takes at it."""

    engine: AsyncEngine
    # One turn per connection, handed out in the order asked for: waiting in the pool itself,
    # work that had waited lost its connection to work that had just arrived (asyncio's queue
    # lets a newcomer take what was put back before the waiter it woke runs), and at
    # concurrency 64 with 20 connections p99 was 2.9 s against p50 0.8 s (1.3 s with 64).
    turns: asyncio.Semaphore


_on_loops: weakref.WeakKeyDictionary[
    Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop]
] = weakref.WeakKeyDictionary()


def open_on_this_loop(engine: Engine) -> None:
    """From now on ``run`` does ``engine``'s work on the running event loop, where it can.

    That is PostgreSQL through psycopg: the loop gets a pool of psycopg's asyncio connections
    of its own. On a SQLite file, whose work already runs on the loop, a thread makes the
    checkpoints that a case's COMMIT would otherwise make there (wal.py). Whoever opens must
    await ``close_on_this_loop`` (the app's lifespan does both).
    """
    if engine.dialect.name == "sqlite":
        _start_checkpoints(engine)
        return
    if engine.dialect.driver != "psycopg":
        return
    on_loops = _on_loops.setdefault(engine, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    if loop in on_loops:
        return
    options = loop_pools[engine]  # make_engine's
    pool = create_async_engine(engine.url, json_serializer=json_text, **options)
    _ping_when_stale(pool.sync_engine)
    event.listen(pool.sync_engine, "connect", bound_sessions(lock_timeouts[engine]))
    event.listen(pool.sync_engine, "before_cursor_execute", refuse_unprepared)
    key = bound_key(engine)
    if key is not None:
        bind_key(pool.sync_engine, key)
    # Work holds one connection at a time (a unit of work is one transaction after another).
    on_loops[loop] = _OnLoop(pool, asyncio.Semaphore(options["pool_size"]))


def _ping_when_stale(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it may have gone stale.

    That is when it has sat in the pool for ``PING_AFTER_IDLE_S`` or more, or when another
    connection of the pool was found broken after it came back (a server that restarts drops
    them all; a decision's statements go to the driver directly, so SQLAlchemy's own handling
    of a lost connection, which would mark the whole pool, never sees their errors). A ping that
    fails marks the whole pool, as SQLAlchemy's pre-ping does, and the connection is opened
    again. The pre-ping at every checkout was a round trip of its own for each of a decision's
    three units of work, which nothing else could travel with: interleaved runs of
    scripts/bench, one worker, made 238 and 238 decisions/s at 4.14 and 4.12 ms of CPU with it,
    278 and 292/s at 3.53 and 3.36 ms without.
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


async def close_on_this_loop(engine: Engine) -> None:
    """Close what ``open_on_this_loop`` opened for the running loop, if anything."""
    if engine.dialect.name == "sqlite":
        await anyio.to_thread.run_sync(_stop_checkpoints, engine)
        return
    loops = _on_loops.get(engine)
    on_loop = None if loops is None else loops.pop(asyncio.get_running_loop(), None)
    if on_loop is not None:
        await on_loop.engine.dispose()


# A SQLite file's checkpoint thread, and how many opens it serves (a test may open twice).
_checkpoints: weakref.WeakKeyDictionary[Engine, tuple[Checkpointer, int]] = (
    weakref.WeakKeyDictionary()
)


def _start_checkpoints(engine: Engine) -> None:
    database = engine.url.database
    if not database or database == ":memory:":
        return
    with queues_lock:
        running, opens = _checkpoints.get(engine, (None, 0))
        if running is None:
            queue = writer_queue_locked(engine)
            running = Checkpointer(engine, queue.turn)
            running.start()
        _checkpoints[engine] = (running, opens + 1)


def _stop_checkpoints(engine: Engine) -> None:
    with queues_lock:
        running, opens = _checkpoints.get(engine, (None, 0))
        if running is None:
            return
        if opens > 1:
            _checkpoints[engine] = (running, opens - 1)
            return
        del _checkpoints[engine]
    running.stop()



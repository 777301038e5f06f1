"""Engines and transactions, and applying migrations.

SQLite runs in WAL mode (readers never block the writer) and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that later upgrades to a write lock can fail at once
with "database is locked" when another writer got there first, instead of waiting its turn.
Writers also queue before they begin, threads on a lock and processes (``serve --workers``) on
an advisory lock of a file beside the database: SQLite's busy handler makes a waiting writer
sleep and poll (up to 100 ms a nap), which under concurrent submissions cost more latency and
throughput than the writes themselves. The busy handler stays as the fallback for any writer
that does not queue (a migration, the sqlite3 shell).

``run`` decides where a short unit of work (one case's statements) runs: on SQLite, on the
event loop's own thread, because handing it to a thread cost far more than the statements; on
PostgreSQL, whose every statement is a round trip, on the loop too, in a greenlet over
psycopg's asyncio connections, which waits for each answer without stopping the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from miaopi.records.prepared import driver_error
from miaopi.records.sealing import DataKey, bind_key, bound_key, json_text
from miaopi.records.wal import Checkpointer
from miaopi.telemetry import DATABASE_WAIT_SECONDS

_SERVER_POOL = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
# The loop's own pool (open_on_this_loop): its work is not bounded by statement threads, so
# under load it used connections beyond the pool's size, and each was opened and closed again
# per use (a server process forked per case). A fixed pool makes the work wait its turn; its
# size is a setting (20 by default). Its connections are pinged only when they may have gone
# stale (_ping_when_stale); the one returned last is handed out first, so that under a light
# load a few connections serve, each back within the time it is trusted without a ping, and
# the rest sit idle.
LOOP_POOL_SIZE = 20
_LOOP_POOL = {"pool_pre_ping": False, "pool_use_lifo": True, "max_overflow": 0}
_loop_pools: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


# libpq's bounds on a database server that stops answering without closing the connection (a
# failover to another address, a network that drops packets). Without them, a connection being
# made waited for TCP to give up, about two minutes, and a statement on a connection already
# made about fifteen (tcp_retries2), with the request, its place among the decisions in flight
# and its connection held all that time; bounded, the request answers 503 database-unavailable.
_NETWORK_BOUNDS: dict[str, Any] = {
    "connect_timeout": 5,  # seconds, the whole connection: TCP, TLS, authentication
    "tcp_user_timeout": 10_000,  # milliseconds a sent statement may stay unacknowledged
}


# A transaction of ours is a few statements sent together and never waits on anything else; one
# left open and idle is a process frozen, or cut off, mid-transaction. Meanwhile it holds its
# locks, among them the ledger's head and the year's approval counter, which every decision of
# every instance waits for, until the server notices the client is gone: with TCP keepalives
# at the server's default, two hours. The server ends such a session after this long.
IDLE_IN_TRANSACTION_MS = 10_000

# How long work waits for a lock that another transaction holds before it fails, and its
# request answers 503 database-unavailable (``MIAOPI_DATABASE_LOCK_TIMEOUT_S``): on PostgreSQL
# the server's ``lock_timeout``, on SQLite the write slot, for work on the event loop. Every
# decision of every instance takes the ledger's head, and approvals the year's counter: a
# transaction that holds them (a migration rolled out while the fleet serves, an operator's
# session left open in psql, a writer process stopped under a debugger) used to hold every
# decision, each waiting with its connection and its place among the decisions in flight
# for as long as it lasted.
LOCK_TIMEOUT_S = 5.0
_lock_timeouts: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def _bound_sessions(lock_timeout_s: float) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that sets a new server connection's bounds on waiting."""
    lock_timeout_ms = max(1, round(lock_timeout_s * 1000))

    def bound(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
        cursor.execute(f"SET lock_timeout = {lock_timeout_ms}")
        cursor.close()
        dbapi_connection.commit()  # a SET rolled back with its transaction would be undone

    return bound


def make_engine(
    url: str,
    data_key: DataKey | None = None,
    *,
    pool_size: int = LOOP_POOL_SIZE,
    prepared_statements: bool = True,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> Engine:
    """An engine for ``url``; ``data_key`` seals and opens its personal data (sealing.py).

    For a server database, ``pool_size`` is the connections of the loop's own pool
    (``open_on_this_loop``), and without ``prepared_statements`` psycopg never prepares a
    statement on the server (for a pooler in transaction mode that does not track them).
    Work gives up on a lock held elsewhere after ``lock_timeout_s`` (``LOCK_TIMEOUT_S``).
    """
    connect_args: dict[str, Any] = {} if prepared_statements else {"prepare_threshold": None}
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # The URL's own values, if it gives them, stand (``?connect_timeout=…``).
        connect_args |= {k: v for k, v in _NETWORK_BOUNDS.items() if k not in parsed.query}
    engine = _engine(parsed, connect_args)
    _lock_timeouts[engine] = lock_timeout_s
    if parsed.get_backend_name() != "sqlite":
        event.listen(engine, "connect", _bound_sessions(lock_timeout_s))
    event.listen(engine, "before_cursor_execute", _refuse_unprepared)
    if data_key is not None:
        bind_key(engine, data_key)
    _loop_pools[engine] = {**_LOOP_POOL, "pool_size": pool_size, "connect_args": connect_args}
    return engine


# A connection back in the pool for less than this is used without a ping, as HikariCP does
# for 500 ms (its aliveBypassWindowMs).
_PING_AFTER_IDLE_S = 0.5
_RETURNED_AT = "miaopi.returned_at"


def _engine(parsed: URL, connect_args: dict[str, Any]) -> Engine:
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            parsed, json_serializer=json_text, connect_args=connect_args, **_SERVER_POOL
        )

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=json_text
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        # On the driver's connection: every transaction begins here, and SQLAlchemy's
        # execution of a statement costs ten times SQLite's (see prepared.py).
        try:
            conn.connection.dbapi_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc

    return engine


class WriterBusy(Exception):
    """Another writer holds the SQLite database; raised only to work that must not wait."""


class _WriterQueue:
    """One writer at a time per SQLite file: a lock for threads, ``flock`` for processes."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._fd: int | None = None
        if database and database != ":memory:":
            self._fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def turn(self, wait: bool = True) -> Iterator[None]:
        """Hold the database's only write slot; without ``wait``, raise ``WriterBusy`` at once."""
        if not self._threads.acquire(blocking=wait):
            raise WriterBusy
        try:
            if self._fd is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise WriterBusy from None
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_writer_queues: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()
_queues_lock = threading.Lock()


def _writer_queue(engine: Engine) -> _WriterQueue:
    with _queues_lock:
        return _writer_queue_locked(engine)


def _writer_queue_locked(engine: Engine) -> _WriterQueue:
    queue = _writer_queues.get(engine)
    if queue is None:
        queue = _writer_queues[engine] = _WriterQueue(engine.url.database)
        weakref.finalize(engine, queue.close)
    return queue


@contextmanager
def writing(engine: Engine, *, pipelined: bool = False) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on any exception.

    ``pipelined`` is for work whose statements are all ``Prepared`` (a case's). On PostgreSQL
    they are then sent without waiting for each answer (psycopg's pipeline mode): the work
    waits only where it reads a result, and the commit travels with the last statements, so
    recording an approval takes 6 round trips instead of 13, the pool's ping included.
    SQLAlchemy's own execution cannot read results in that mode, so it is refused there, on
    SQLite too, where tests would otherwise miss it.
    """
    if engine.dialect.name != "sqlite":
        if pipelined:
            with _pipelined(engine) as conn:
                yield conn
            return
        with engine.connect() as conn, _after_commit(conn), conn.begin():
            yield conn
        return
    inline = _inline.__dict__
    # Work run on the event loop gives its place up rather than wait, unless it already wrote.
    wait = not inline.get("active") or inline.get("wrote", False)
    with _writer_queue(engine).turn(wait), engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with _after_commit(conn), _prepared_only(conn, pipelined), conn.begin():
            yield conn
        if inline.get("active"):
            inline["wrote"] = True


@contextmanager
def _prepared_only(conn: Connection, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    conn.info[_PREPARED_ONLY] = True
    try:
        yield
    finally:
        del conn.info[_PREPARED_ONLY]


@contextmanager
def _pipeline(conn: Connection) -> Iterator[Callable[[], None]]:
    """psycopg's pipeline mode on the connection; yields its ``sync``."""
    driver: Any = conn.connection.driver_connection
    if not conn.dialect.is_async:
        with driver.pipeline() as pipeline:
            yield pipeline.sync
        return
    # The asyncio connection's pipeline, awaited from run()'s greenlet like its statements.
    manager = driver.pipeline()
    pipeline = await_(manager.__aenter__())
    try:
        yield lambda: await_(pipeline.sync())
    except BaseException:
        if not await_(manager.__aexit__(*sys.exc_info())):
            raise
    else:
        await_(manager.__aexit__(None, None, None))


@contextmanager
def _pipelined(engine: Engine) -> Iterator[Connection]:
    """A PostgreSQL transaction in psycopg's pipeline mode, committed inside the pipeline."""
    with engine.connect() as conn, _prepared_only(conn, True):
        dbapi = conn.dialect.loaded_dbapi
        transaction = conn.begin()
        try:
            with _pipeline(conn) as sync, _after_commit(conn):
                try:
                    yield conn
                    transaction.commit()  # COMMIT goes with the statements still unanswered
                except BaseException:
                    # Statements sent after a failed one answer "aborted": read those answers
                    # here, so that ending the pipeline does not raise that over the error.
                    with suppress(dbapi.Error):
                        sync()
                    raise
        except BaseException as exc:
            _roll_back(conn, transaction)
            if isinstance(exc, dbapi.Error):  # an answer read as the pipeline ended
                raise driver_error(conn.dialect, "(pipeline)", exc) from exc
            raise


def _roll_back(conn: Connection, transaction: Any) -> None:
    """Roll back, outside the pipeline, also after a failed COMMIT.

    SQLAlchemy counts a transaction whose COMMIT failed as ended, and its pool then skips the
    rollback it does on return: the connection would go back in the pool with its transaction
    open in error, and fail whoever took it next.
    """
    if transaction.is_active:
        transaction.rollback()
        return
    try:
        conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
    except conn.dialect.loaded_dbapi.Error:
        conn.invalidate()  # a connection that cannot roll back is not handed out again


_PREPARED_ONLY = "miaopi.prepared_only"
_AFTER_COMMIT = "miaopi.after_commit"


def after_commit(conn: Connection, then: Callable[[], None]) -> None:
    """Call ``then`` once the ``writing`` transaction of ``conn`` has committed, on the same
    connection (for reading answers a pipeline left unread); never if it rolls back."""
    conn.info[_AFTER_COMMIT].append(then)


@contextmanager
def _after_commit(conn: Connection) -> Iterator[None]:
    # conn.info outlives the checkout (it is the pooled connection's): emptied either way.
    conn.info[_AFTER_COMMIT] = calls = []
    try:
        yield
    finally:
        del conn.info[_AFTER_COMMIT]
    for then in calls:
        then()


def _refuse_unprepared(conn: Connection, *_: Any) -> None:
    if conn.info.get(_PREPARED_ONLY):
        raise RuntimeError("a pipelined transaction runs Prepared statements only")


_inline = threading.local()  # set while ``run`` runs work on the event loop's thread

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
        on_loop = _on_loops.get(engine, {}).get(asyncio.get_running_loop())
        if on_loop is None:
            return await anyio.to_thread.run_sync(lambda: work(engine, *args, **kwargs))
        asked = time.perf_counter()
        async with on_loop.turns:
            DATABASE_WAIT_SECONDS.observe(time.perf_counter() - asked)
            return await greenlet_spawn(work, on_loop.engine.sync_engine, *args, **kwargs)
    state = _inline.__dict__
    pause = _FIRST_PAUSE_S
    asked = tried = time.perf_counter()
    bound = _lock_timeouts.get(engine, LOCK_TIMEOUT_S)
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
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    busy.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
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
    options = _loop_pools[engine]  # make_engine's
    pool = create_async_engine(engine.url, json_serializer=json_text, **options)
    _ping_when_stale(pool.sync_engine)
    event.listen(pool.sync_engine, "connect", _bound_sessions(_lock_timeouts[engine]))
    event.listen(pool.sync_engine, "before_cursor_execute", _refuse_unprepared)
    key = bound_key(engine)
    if key is not None:
        bind_key(pool.sync_engine, key)
    # Work holds one connection at a time (a unit of work is one transaction after another).
    on_loops[loop] = _OnLoop(pool, asyncio.Semaphore(options["pool_size"]))


def _ping_when_stale(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it may have gone stale.

    That is when it has sat in the pool for ``_PING_AFTER_IDLE_S`` or more, or when another
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
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "invalidate")
    def _found_broken(_dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        broken_at[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None:  # opened for this checkout (a reconnection empties ``info``)
            return
        if returned > broken_at[0] and time.monotonic() - returned < _PING_AFTER_IDLE_S:
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
    on_loop = _on_loops.get(engine, {}).pop(asyncio.get_running_loop(), None)
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
    with _queues_lock:
        running, opens = _checkpoints.get(engine, (None, 0))
        if running is None:
            queue = _writer_queue_locked(engine)
            running = Checkpointer(engine, queue.turn)
            running.start()
        _checkpoints[engine] = (running, opens + 1)


def _stop_checkpoints(engine: Engine) -> None:
    with _queues_lock:
        running, opens = _checkpoints.get(engine, (None, 0))
        if running is None:
            return
        if opens > 1:
            _checkpoints[engine] = (running, opens - 1)
            return
        del _checkpoints[engine]
    running.stop()


def statement_threads(engine: Engine) -> int:
    """How many threads of a process should run this database's statements at once.

    Every thread beyond what the database can use only contends for the GIL with the event
    loop. SQLite takes one writer at a time (plus a reader beside it); PostgreSQL, as many as
    the connection pool holds, so no thread waits for a connection. Measured with
    scripts/bench against anyio's default of 40: SQLite 53 -> 59 decisions/s with 2,
    PostgreSQL with 2 workers 47 -> 58/s and p99 5.7 -> 2.6 s with 10.
    """
    if engine.dialect.name == "sqlite":
        return 2
    return engine.pool.size()  # type: ignore[attr-defined,no-any-return]


def dialect_insert(dialect: Dialect):  # type: ignore[no-untyped-def]
    """``insert`` with ``ON CONFLICT`` support, for the database."""
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def reading_one(engine: Engine) -> Iterator[Connection]:
    """For work that reads with one statement: on PostgreSQL, outside a transaction.

    One statement sees one snapshot by itself; a transaction around it only added BEGIN and
    its end: the fraud-bar read every decision makes took 4 round trips, the pool's ping
    included, and takes 2. On SQLite the driver is in autocommit mode already (``_engine``),
    and skipping SQLAlchemy's BEGIN and COMMIT halves what the read costs beside its statement
    (43 → 22 µs in process).
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "miaopi.records:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (the only way the schema is made).

    On SQLite a migration that changes a column's type rebuilds the table, which foreign keys
    referring to it would refuse: they are off for the migration and checked before commit,
    the procedure SQLite's documentation gives for such changes.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    cfg.attributes["data_key"] = bound_key(engine)
    sqlite_db = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if sqlite_db:
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            # A migration that seals plain text must not leave it behind in freed pages.
            raw.execute("PRAGMA secure_delete=ON")  # type: ignore[union-attr]
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    # A migration waits for the locks it needs as long as it takes.
                    conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
                    # Instances starting together: one migrates, the others wait, then see head.
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(44030001)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite_db and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("a migration left rows whose foreign keys do not hold")
        finally:
            if sqlite_db:
                raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
                raw.execute("PRAGMA secure_delete=OFF")  # type: ignore[union-attr]

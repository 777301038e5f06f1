"""Engines: how miaopi connects to SQLite and PostgreSQL, and the bounds it sets on waiting.

SQLite runs in WAL mode (readers never block the writer) and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that later upgrades to a write lock can fail at once
with "database is locked" when another writer got there first, instead of waiting its turn.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from miaopi.records.sealing import DataKey, bind_key, json_text
from miaopi.records.writing import WRITE_SLOT, WriteSlot, refuse_unprepared

_SERVER_POOL = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
# The loop's own pool (open_on_this_loop): its work is not bounded by statement threads, so
# under load it used connections beyond the pool's size, and each was opened and closed again
# per use (a server process forked per case). A fixed pool makes the work wait its turn; its
# size is a setting (20 by default). Its connections are pinged only when they may have gone
# stale (_ping_when_stale); the one returned last is handed out first, so that under a light
# load a few connections serve, each back within the time it is trusted without a ping, and
# the rest sit idle.
LOOP_POOL_SIZE = 20
LOOP_POOL = {"pool_pre_ping": False, "pool_use_lifo": True, "max_overflow": 0}


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


def bound_sessions(lock_timeout_s: float) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that sets a new server connection's bounds on waiting."""
    lock_timeout_ms = max(1, round(lock_timeout_s * 1000))

    def bound(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
        cursor.execute(f"SET lock_timeout = {lock_timeout_ms}")
        cursor.close()
        dbapi_connection.commit()  # a SET rolled back with its transaction would be undone

    return bound


def connect_args(url: URL, prepared_statements: bool = True) -> dict[str, Any]:
    """The driver's arguments: without ``prepared_statements`` psycopg never prepares a
    statement on the server (for a pooler in transaction mode that does not track them)."""
    args: dict[str, Any] = {} if prepared_statements else {"prepare_threshold": None}
    if url.get_backend_name() == "postgresql":
        # The URL's own values, if it gives them, stand (``?connect_timeout=…``).
        args |= {k: v for k, v in _NETWORK_BOUNDS.items() if k not in url.query}
    return args


def make_engine(
    url: str,
    data_key: DataKey | None = None,
    *,
    prepared_statements: bool = True,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> Engine:
    """An engine for ``url``; ``data_key`` seals and opens its personal data (sealing.py).

    A server's sessions give up on a lock held elsewhere after ``lock_timeout_s``; a SQLite
    file's engine carries the file's write slot (``writing.WRITE_SLOT``).
    """
    parsed = make_url(url)
    engine = _engine(parsed, connect_args(parsed, prepared_statements))
    if parsed.get_backend_name() != "sqlite":
        event.listen(engine, "connect", bound_sessions(lock_timeout_s))
    event.listen(engine, "before_cursor_execute", refuse_unprepared)
    if data_key is not None:
        bind_key(engine, data_key)
    return engine


# A connection back in the pool for less than this is used without a ping, as HikariCP does
# for 500 ms (its aliveBypassWindowMs).
PING_AFTER_IDLE_S = 0.5
RETURNED_AT = "miaopi.returned_at"


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
    slot = WriteSlot(parsed.database)
    engine.update_execution_options(**{WRITE_SLOT: slot})
    weakref.finalize(engine, slot.close)

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



def statement_threads(engine: Engine) -> int:
    """How many threads of a process should run this database's statements at once.

    Every thread beyond what the database can use only contends for the GIL with the event
    loop. SQLite takes one writer at a time (plus a reader beside it); PostgreSQL, as many as
    the connection pool holds, so no thread waits for a connection. (anyio's default of 40
    threads decided less and later on both: bench/HISTORY.md.)
    """
    if engine.dialect.name == "sqlite":
        return 2
    return cast(QueuePool, engine.pool).size()  # a server database's pool (_SERVER_POOL)


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
    and skipping SQLAlchemy's BEGIN and COMMIT halves what the read costs beside its statement.
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


"""Write transactions: SQLite's one write slot, PostgreSQL's pipeline, work after COMMIT.

Writers of a SQLite file queue before they begin, threads on a lock and processes
(``serve --workers``) on an advisory lock of a file beside the database: SQLite's busy handler
makes a waiting writer sleep and poll (up to 100 ms a nap), which under concurrent submissions
cost more latency and throughput than the writes themselves. The busy handler stays as the
fallback for any writer that does not queue (a migration, the sqlite3 shell).
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.util.concurrency import await_

from miaopi.records.prepared import driver_error


class WriterBusy(Exception):
    """Another writer holds the SQLite database; raised only to work that must not wait."""


class WriteSlot:
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


# The execution option of a SQLite engine that holds its file's ``WriteSlot`` (engines.py).
WRITE_SLOT = "miaopi_write_slot"


def write_slot(engine: Engine) -> WriteSlot:
    """The write slot of a SQLite engine's file (``make_engine`` gives every one its own)."""
    slot: WriteSlot = engine.get_execution_options()[WRITE_SLOT]
    return slot


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
    inline = inline_work.__dict__
    # Work run on the event loop gives its place up rather than wait, unless it already wrote.
    wait = not inline.get("active") or inline.get("wrote", False)
    with write_slot(engine).turn(wait), engine.connect() as conn:
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
    calls: list[Callable[[], None]] = []
    conn.info[_AFTER_COMMIT] = calls
    try:
        yield
    finally:
        del conn.info[_AFTER_COMMIT]
    for then in calls:
        then()


def refuse_unprepared(conn: Connection, *_: Any) -> None:
    if conn.info.get(_PREPARED_ONLY):
        raise RuntimeError("a pipelined transaction runs Prepared statements only")



inline_work = threading.local()  # set while ``run`` runs work on the event loop's thread

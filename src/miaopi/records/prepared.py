"""The statements every decision runs, compiled once per database and sent to its driver directly.

SQLAlchemy compiles each of these statements once and caches it, but executing the cached form
still costs about 50 µs of Python (an execution context, events, parameter processing, a result
object): under load that was a fifth of the service's CPU, with SQLite's own work a twentieth
of it (py-spy, scripts/bench). A ``Prepared`` statement keeps what SQLAlchemy compiled for a
database, SQL text, parameter order and each parameter's bind processor, and hands the values
straight to the DBAPI cursor of the connection's transaction. The bind processors are the
columns' own, so a sealed column is sealed and a date is stored exactly as through SQLAlchemy.

Rows come back as named tuples, each value through its column's result processor (a sealed
value opened, a date parsed). Driver errors are raised as SQLAlchemy's (an ``IntegrityError``
is still an ``IntegrityError``), without their parameters, which hold personal data.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_

Params = Mapping[str, Any]
T = TypeVar("T")


_GIVEN = object()  # a parameter whose value comes with each execution


@dataclass(slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    fixed: tuple[Any, ...]  # a value the statement itself holds (``role == "auditor"``), or _GIVEN
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    dialect: Dialect
    returned: tuple[TypeEngine[Any], ...]  # the types of the columns it returns, if any
    row: type[tuple[Any, ...]]  # a named tuple of those columns
    # Each column's result processor, from the first result: some drivers' processors depend
    # on the type the database reported (PostgreSQL's numbers).
    readers: tuple[Callable[[Any], Any] | None, ...] | None = None

    def read(self, cursor: Any, raws: Sequence[Sequence[Any]]) -> list[Any]:
        if self.readers is None:
            self.readers = tuple(
                kind.dialect_impl(self.dialect).result_processor(self.dialect, described[1])
                for kind, described in zip(self.returned, cursor.description, strict=True)
            )
        return [
            self.row._make(  # type: ignore[attr-defined]
                value if read is None or value is None else read(value)
                for value, read in zip(raw, self.readers, strict=True)
            )
            for raw in raws
        ]

    def values(self, params: Params) -> Sequence[Any] | dict[str, Any]:
        processed = [
            value if process is None else process(value)
            for value, process in zip(
                [
                    params[name] if fixed is _GIVEN else fixed
                    for name, fixed in zip(self.names, self.fixed, strict=True)
                ],
                self.processors,
                strict=True,
            )
        ]
        return processed if self.positional else dict(zip(self.names, processed, strict=True))


class Prepared:
    """A statement, or one built per dialect (``ON CONFLICT`` differs), ready for its driver."""

    def __init__(self, statement: ClauseElement | Callable[[Dialect], ClauseElement]) -> None:
        self._build = statement if callable(statement) else (lambda _dialect: statement)
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        found = self._compiled.get((dialect.name, keys))
        if found is not None:
            return found
        # An INSERT takes its columns from the values given, as SQLAlchemy compiles it.
        statement = self._build(dialect)
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        returned = list(getattr(statement, "exported_columns", ()))  # none from text()
        positional = bool(compiled.positional)
        rendered = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or ()) if positional else tuple(rendered)
        binds = [rendered[name] for name in names]
        found = _Compiled(
            sql=str(compiled),
            names=names,
            fixed=tuple(_GIVEN if b.required else b.effective_value for b in binds),
            processors=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
            positional=positional,
            dialect=dialect,
            returned=tuple(c.type for c in returned),
            row=namedtuple("Row", [c.key for c in returned], rename=True),
        )
        self._compiled[(dialect.name, keys)] = found
        return found

    def _run(
        self,
        conn: Connection,
        params: Params,
        fetch: Callable[[_Compiled, Any], T] | None = None,
    ) -> T | None:
        compiled = self._for(conn.dialect, tuple(params))
        dbapi = conn.dialect.loaded_dbapi
        cursor = _cursor(conn)
        try:
            cursor.execute(compiled.sql, compiled.values(params))
            # In a pipeline (writing.py) an error arrives with the next result read, which may
            # be this statement's or a later one's.
            return None if fetch is None else fetch(compiled, cursor)
        except dbapi.Error as exc:
            raise driver_error(conn.dialect, compiled.sql, exc) from exc
        finally:
            cursor.close()

    def sent(self, conn: Connection, params: Params) -> Callable[[], Any]:
        """Send it now; the function returned reads the first column of its first row later.

        On PostgreSQL in a pipeline (``writing.writing``) that can be after COMMIT, so that no lock
        the statement took waits for its answer to reach the client; read it before the
        connection goes back to the pool: inside the ``writing`` block, or in
        ``writing.after_commit``. SQLite cannot commit with an answer unread: it is read at once.
        """
        compiled = self._for(conn.dialect, tuple(params))
        dbapi = conn.dialect.loaded_dbapi
        cursor = _cursor(conn)
        try:
            cursor.execute(compiled.sql, compiled.values(params))
        except dbapi.Error as exc:
            cursor.close()
            raise driver_error(conn.dialect, compiled.sql, exc) from exc
        except BaseException:
            cursor.close()
            raise

        def read() -> Any:
            try:
                row = _first(compiled, cursor)
            except dbapi.Error as exc:
                raise driver_error(conn.dialect, compiled.sql, exc) from exc
            finally:
                cursor.close()
            return None if row is None else row[0]

        if conn.dialect.name == "sqlite":  # SQLite cannot commit with a statement unread
            value = read()
            return lambda: value
        return read

    def execute(self, conn: Connection, params: Params) -> None:
        """Run it with one set of values (many rows: a statement of many rows of values)."""
        self._run(conn, params)

    def rows(self, conn: Connection, params: Params) -> list[Any]:
        """Every row it returns, each a named tuple of its columns' values."""
        return self._run(conn, params, _all) or []

    def first(self, conn: Connection, params: Params) -> Any:
        """The first row; None if there is none."""
        return self._run(conn, params, _first)

    def scalar(self, conn: Connection, params: Params) -> Any:
        """The first column of the first row; None if there is no row."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def scalars(self, conn: Connection, params: Params) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in self.rows(conn, params)]


def _cursor(conn: Connection) -> Any:
    if conn.dialect.is_async:
        return _Awaited(conn.connection.driver_connection.cursor())  # type: ignore[union-attr]
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


class _Awaited:
    """An asyncio driver's cursor as a plain one, for work that ``Database.run`` runs in a greenlet.

    SQLAlchemy's own adapter of the cursor reads a statement's rows as soon as it runs, which
    in a pipeline finds none yet: a pipelined read would come back empty.
    """

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    def execute(self, sql: str, params: Any) -> None:
        await_(self._cursor.execute(sql, params))

    def fetchone(self) -> Any:
        return await_(self._cursor.fetchone())

    def fetchall(self) -> Any:
        return await_(self._cursor.fetchall())

    def close(self) -> None:
        await_(self._cursor.close())


def _all(compiled: _Compiled, cursor: Any) -> list[Any]:
    return compiled.read(cursor, cursor.fetchall())


def _first(compiled: _Compiled, cursor: Any) -> Any:
    raw = cursor.fetchone()
    return None if raw is None else compiled.read(cursor, [raw])[0]


def driver_error(dialect: Dialect, sql: str, exc: Exception) -> DBAPIError:
    """The driver's error as SQLAlchemy's (an ``IntegrityError`` stays one), parameters hidden."""
    error = DBAPIError.instance(
        sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )
    assert isinstance(error, DBAPIError)  # noqa: S101 - a driver's error is always a DBAPIError
    return error

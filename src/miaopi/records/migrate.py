"""Migrations: the only way the schema is made or changed (Alembic, in ``migrations/``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from miaopi.records.sealing import bound_key


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "miaopi.records:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def pending(engine: Engine) -> tuple[str | None, str] | None:
    """(the database's revision, the newest) when migrations are pending; None at the newest.
    Reads only: for commands that must not write, such as ``miaopi ledger verify``."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return None if current == head or head is None else (current, head)


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

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from miaopi.records.db import make_engine, upgrade
from miaopi.records.sealing import DataKey
from miaopi.records.tables import metadata
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

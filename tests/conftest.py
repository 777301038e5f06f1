from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
import yaml
from sqlalchemy import Engine
from stdnum.cn import ric

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.ruleset import RuleBook
from miaopi.records.clients import create_client
from miaopi.records.database import Database
from miaopi.records.sealing import generate_key
from miaopi.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> Any:
    """A script of the repository's (bench/, scripts/) as a module: they are files, not a
    package, and the tests use their functions as their users run them."""
    import importlib.util

    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
RULES = REPO / "rules"
# Persona outcomes in adapters/mock/personas.yaml are stated for a day in their window.
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = date(2026, 11, 22)
EMPLOYER = "91440305MA5F1Q2RXK"
OTHER_EMPLOYER = "91440305MA5G2K7N95"
# One key for the suite's databases; tests of the key itself make their own.
DATA_KEY = generate_key()


def _stale_install() -> list[str]:
    """Files of the checkout whose installed copy differs (scripts/test installs plainly).

    After an edit, a plain install still holds the old code, and the suite would pass or fail
    on code that is not the checkout's. An editable install is the checkout itself.
    """
    import miaopi
    import miaopi.adapters
    import miaopi.bundled_rules

    roots = {
        REPO / "src" / "miaopi": Path(miaopi.__file__).parent,
        REPO / "adapters": Path(miaopi.adapters.__file__).parent,
        RULES: Path(miaopi.bundled_rules.__file__).parent,
    }
    stale = []
    for source, installed in roots.items():
        if source.resolve() == installed.resolve():
            continue
        for file in sorted(source.rglob("*")):
            if not file.is_file() or "__pycache__" in file.parts:
                continue
            twin = installed / file.relative_to(source)
            # Every module is installed; data files only as pyproject's package-data says.
            if file.suffix != ".py" and not twin.exists():
                continue
            if not twin.is_file() or twin.read_bytes() != file.read_bytes():
                stale.append(str(file.relative_to(REPO)))
    return stale


def pytest_configure(config: pytest.Config) -> None:
    stale = _stale_install()
    if stale:
        raise pytest.UsageError(
            f"the installed miaopi is not this checkout ({', '.join(stale[:3])}"
            f"{', ...' if len(stale) > 3 else ''} differ): run scripts/test, which installs it "
            "first, or make an editable install (pip install -e .)"
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def rulebook() -> RuleBook:
    return RuleBook.load(RULES, "4403")


@pytest.fixture(scope="session")
def rule_engine() -> RuleEngine:
    return RuleEngine()


# The suite runs on SQLite, and on PostgreSQL when this names a server's database (.ci/run):
# each test then gets a database of its own, made from nothing by the migrations.
POSTGRES_URL = os.environ.get("MIAOPI_TEST_POSTGRES_URL", "")
ON_POSTGRES = bool(POSTGRES_URL)
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="about SQLite's own files or modes")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path}/miaopi.db"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES_URL)
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    # FORCE ends the test's leftover sessions; an autovacuum worker in the database can only be
    # ended with pg_signal_backend (scripts/postgres grants it), so on other servers wait it out.
    for _ in range(50):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.2)
    raise RuntimeError(f"could not drop the test database {name}")


_OF_IT = "FROM pg_stat_activity WHERE datname = %s"


@contextmanager
def _admin() -> Iterator[Any]:
    """A connection to the test server's own database, in autocommit: each statement sees
    pg_stat_activity anew."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        yield admin


def session_count(database: str) -> int:
    """How many sessions a test's PostgreSQL database has open."""
    with _admin() as admin:
        return admin.execute(f"SELECT count(*) {_OF_IT}", [database]).fetchone()[0]


@contextmanager
def sessions_ended(database: str, *, refuse_new: bool = False) -> Iterator[int]:
    """End every session of a test's PostgreSQL database, as a restart or a failover would;
    yields how many there were. With ``refuse_new`` the database also refuses connections
    until the block ends."""
    with _admin() as admin:
        if refuse_new:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            ended = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {_OF_IT}", [database])
            count = (ended.fetchone() or (0,))[0]
            deadline = time.monotonic() + 10
            while admin.execute(f"SELECT count(*) {_OF_IT}", [database]).fetchone() != (0,):
                assert time.monotonic() < deadline, "the sessions did not end"
                time.sleep(0.01)
            yield count
        finally:
            if refuse_new:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


def run_on_the_loop(database: Database, work: Callable[..., Any], *args: Any) -> Any:
    """``database.run(work, *args)`` once, on a loop of its own with the database's loop pool
    opened for it and closed after, as a serving process's lifespan does."""

    async def once() -> Any:
        database.open_on_this_loop()
        try:
            return await database.run(work, *args)
        finally:
            await database.close_on_this_loop()

    return anyio.run(once)


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until ``/readyz`` on loopback answers 200; fails if the server exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def serve_process(
    env: dict[str, str], cwd: Path, workers: int = 1, stderr: int = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], int]:
    """``miaopi serve`` with ``workers`` workers, ready; the process and its port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "miaopi.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr,
    )  # fmt: skip
    try:
        wait_ready(port, server)
    except BaseException:
        server.kill()
        server.wait()
        raise
    return server, port


def stored_bytes(engine: Engine) -> bytes:
    """Everything the database holds, as an attacker with its files would read it.

    SQLite: the database file and its WAL, byte for byte. PostgreSQL: every row of every table
    as text (the server's files are not ours to read in a test).
    """
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        engine.dispose()  # checkpoints the WAL
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with engine.connect() as conn:
        tables = (
            conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            .scalars()
            .all()
        )
        return "\n".join(
            str(row[0])
            for t in tables
            for row in conn.exec_driver_sql(f'SELECT "{t}"::text FROM "{t}"')  # noqa: S608
        ).encode()


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cohort_dataset(tmp_path_factory.mktemp("cohort") / "dataset.yaml")


@pytest.fixture
def settings(database_url: str, cohort: Path) -> Settings:
    return Settings(
        database_url=database_url,
        rules_dir=RULES,
        data_key=DATA_KEY,
        mock_dataset=cohort,
        _env_file=None,  # type: ignore[call-arg]
    )


class Clock:
    """The service's clock in tests: fixed, and moved on when a test needs time to pass."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def container(settings: Settings, clock: Clock) -> Iterator[Container]:
    made = bootstrap(settings, clock=clock)
    yield made
    made.database.dispose()  # pooled connections closed before the test's database goes away


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    container.database.open_on_this_loop()  # as the app's lifespan does, which ASGITransport skips
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://miaopi.test"
    ) as client:
        yield client
    await container.aclose()


@pytest.fixture
def make_key(container: Container) -> Callable[..., dict[str, str]]:
    def make(role: str = "employer", uscc: str | None = EMPLOYER, **kw: str) -> dict[str, str]:
        _, key = create_client(
            container.database.engine,
            role,
            f"{role} test",
            uscc=uscc if role == "employer" else None,
            **kw,
        )
        return {"Authorization": f"Bearer {key}"}

    return make


def graduate(n: int) -> dict[str, str]:
    """The n-th of a cohort of graduates like 李明, each a person of their own (policy §5
    approves a person once a year): the application's ``id_number``, ``name``, ``diploma_no``.
    They are in every test's dataset (``COHORT_DATASET``)."""
    base = f"42010220020315{700 + n:03d}"
    return {
        "id_number": base + ric.calc_check_digit(base + "0"),  # it reads the first 17
        "name": f"李明{n:03d}",
        "diploma_no": f"1048612026029{n:05d}",  # serials 9xxxxx: none of the personas
    }


def cohort_dataset(path: Path, size: int = 240) -> Path:
    """The bundled personas and the graduate cohort, written as a mock dataset file."""
    personas = yaml.safe_load(
        (REPO / "adapters" / "mock" / "personas.yaml").read_text(encoding="utf-8")
    )
    for n in range(size):
        g = graduate(n)
        personas["persons"].append({
            "id_number": g["id_number"], "name": g["name"], "birth_date": "2002-03-15",
            "hukou_region": "420102",
            "diplomas": [{"diploma_no": g["diploma_no"], "level": "bachelor",
                          "study_mode": "full_time", "institution": "武汉大学",
                          "graduation_date": "2026-06-30"}],
        })  # fmt: skip
    path.write_text(yaml.safe_dump(personas, allow_unicode=True), encoding="utf-8")
    return path


def application(
    id_number: str = "420102200203151232",
    name: str = "李明",
    diploma_no: str | None = "104861202602000123",
    uscc: str = EMPLOYER,
    **extra: object,
) -> dict[str, object]:
    body: dict[str, object] = {
        "business_type": "graduate",
        "applicant": {"name": name, "id_number": id_number},
        "employer": {"uscc": uscc},
        "claims": {"diploma_no": diploma_no} if diploma_no else {},
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }
    body.update(extra)
    return body

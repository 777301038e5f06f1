"""Several service processes on one database: what must hold however requests interleave.

Two instances of ``miaopi serve`` (one of them with two workers) share the suite's database —
SQLite, or PostgreSQL when the suite runs there — and take concurrent requests from the test.
Re-check claims are raced from several separate processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from miaopi.bootstrap import open_database
from miaopi.records.ledger_verify import verify as ledger_verify
from miaopi.records.sealing import DataKey
from miaopi.records.tables import cases, ledger
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, EMPLOYER, RULES, application, graduate, serve_process

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def _env(database_url: str, dataset: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MIAOPI_MOCK_DATASET": str(dataset),  # the graduate cohort: a person is approved once
        "MIAOPI_DATABASE_URL": database_url,
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_RATE_LIMIT_PER_MINUTE": "0",  # hundreds of requests from one client at once
    }


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "miaopi.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def _database(database_url: str) -> Engine:
    """The fleet's database, as the test reads it back."""
    settings = Settings(database_url=database_url, data_key=DATA_KEY, _env_file=None)  # type: ignore[call-arg]
    return open_database(settings, migrate=False).engine


@pytest.fixture
def fleet(
    database_url: str, tmp_path: Path, cohort: Path
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two instances on one database (the second with two workers); an employer's key."""
    env = _env(database_url, cohort)
    key = _cli(env, "clients", "create", "--role", "employer", "--uscc", EMPLOYER, "--name", "hr")
    servers, urls = [], []
    for workers in (1, 2):
        server, port = serve_process(env, tmp_path, workers)
        servers.append(server)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        yield urls, {"Authorization": f"Bearer {key}"}
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)


async def test_concurrent_identical_requests_make_one_case(
    fleet: tuple[list[str], dict[str, str]], database_url: str
) -> None:
    urls, auth = fleet
    headers = {**auth, "Idempotency-Key": "same-everywhere"}
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(f"{urls[n % 2]}/v1/applications", json=application(), headers=headers)
                for n in range(24)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 23 + [201], [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["case_id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 23
    engine = _database(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 1
    engine.dispose()


async def test_approval_numbers_stay_unique_and_gap_free_across_processes(
    fleet: tuple[list[str], dict[str, str]], database_url: str
) -> None:
    urls, auth = fleet
    n = 60
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{urls[i % 2]}/v1/applications",
                    json=application(**graduate(i)),
                    headers=auth,
                )
                for i in range(n)
            )
        )
    assert [a.status_code for a in answers] == [201] * n
    numbers = sorted(a.json()["approval_number"] for a in answers)
    year = numbers[0].split("-")[1]
    assert numbers == [f"4403-{year}-{i:06d}" for i in range(1, n + 1)]
    engine = _database(database_url)
    with engine.connect() as conn:  # every decision in the ledger, one chain, no fork
        assert conn.execute(select(func.count()).select_from(ledger)).scalar_one() == n
        assert conn.execute(select(func.max(ledger.c.seq))).scalar_one() == n
    assert ledger_verify(engine).intact  # each entry's hashes hold, recomputed from the rows
    engine.dispose()


def _claim_all(database_url: str, key: str, runner: str) -> list[str]:
    """One re-check runner in its own process: claim batches until nothing is left."""
    from miaopi.records.engines import make_engine
    from miaopi.supervision.recheck_claims import claim_rechecks

    engine = make_engine(database_url, DataKey(key))  # the parent's (each process makes one)
    claimed: list[str] = []
    while True:
        batch = claim_rechecks(
            engine, runner=runner, approved_on_or_before=date(2026, 12, 31),
            now=datetime.now().astimezone(), lease=timedelta(minutes=15), limit=7,
        )  # fmt: skip
        if not batch:
            break
        claimed += [row.id for row in batch]
    engine.dispose()
    return claimed


async def test_recheck_runners_in_several_processes_claim_disjoint_work(
    api: httpx.AsyncClient, make_key: object, database_url: str
) -> None:
    employer = make_key()  # type: ignore[operator]
    made = [
        (await api.post("/v1/applications", json=application(**graduate(i)), headers=employer))
        .json()
        for i in range(40)
    ]
    assert all(c["status"] == "approved" for c in made)
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        results = list(
            pool.map(_claim_all, [database_url] * 4, [DATA_KEY] * 4, ["r1", "r2", "r3", "r4"])
        )
    claimed = [case_id for result in results for case_id in result]
    assert sorted(claimed) == sorted(c["case_id"] for c in made)  # each case exactly once


def test_workers_leave_no_metrics_directory_behind(
    database_url: str, tmp_path: Path, cohort: Path
) -> None:
    """Each start with --workers makes a directory for the workers' metrics; a stop removes it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**_env(database_url, cohort), "TMPDIR": str(scratch)}
    server, _ = serve_process(env, tmp_path, 2)
    try:
        assert len(list(scratch.glob("miaopi-metrics-*"))) == 1
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert list(scratch.glob("miaopi-metrics-*")) == []


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_server_told_to_stop_finishes_and_records_the_decisions_in_flight(
    database_url: str, tmp_path: Path, workers: int, cohort: Path
) -> None:
    """A rolling restart sends SIGTERM: what was submitted is decided, answered and kept."""
    env = {
        **_env(database_url, cohort),
        # Every decision waits 1.5 s on CHSI, well within its budget (2.4 s for the first try).
        "MIAOPI_MOCK_LATENCY_MS": "education=1500",
        "MIAOPI_REGISTRY_TIMEOUT_S": "5",
    }
    key = _cli(env, "clients", "create", "--role", "channel", "--name", f"stop-{workers}")
    server, port = serve_process(env, tmp_path, workers)
    engine = _database(database_url)
    try:
        with engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(cases)).scalar_one()
        url = f"http://127.0.0.1:{port}/v1/applications"
        async with httpx.AsyncClient(timeout=30) as client:
            posts = [
                asyncio.ensure_future(client.post(url, json=application(**graduate(n)), headers={
                    "Authorization": f"Bearer {key}", "Idempotency-Key": f"stop-{workers}-{n}"}))
                for n in range(6)
            ]  # fmt: skip
            await asyncio.sleep(0.4)  # all six are past the door, waiting on CHSI
            server.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*posts)
        assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
        assert all(a.json()["evidence"] for a in answers)
        # Stopped as asked: uvicorn, serving alone, raises the signal again once it is done,
        # as a process that does not handle SIGTERM would end; its supervisor exits with 0.
        assert server.wait(timeout=30) == (-signal.SIGTERM if workers == 1 else 0)
        with engine.connect() as conn:
            after = conn.execute(select(func.count()).select_from(cases)).scalar_one()
        assert after - before == 6
        assert ledger_verify(engine).intact
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        engine.dispose()

"""The ledger's verification: how long ``miaopi ledger verify`` takes per entry.

It walks the whole chain, so its time grows with every decision ever recorded: a city's year is
hundreds of thousands of entries. This script records the benchmark's applications (a
channel's submissions through the app in process, the mock registries in process without
latency: a ledger of decisions), then verifies it three times and prints the wall-clock time
and the CPU per entry.

  python bench/ledger.py                    # SQLite in a temporary directory, 3,000 decisions
  python bench/ledger.py -n 10000
  python bench/ledger.py --database-url postgresql+psycopg://miaopi@127.0.0.1:25432/empty
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import run as bench  # bench/run.py, beside this script

REPO = Path(__file__).resolve().parents[1]


async def _record(applications: list[dict[str, object]], concurrency: int) -> dict[str, int]:
    import httpx

    from miaopi.api.app import create_app
    from miaopi.bootstrap import bootstrap
    from miaopi.records.clients import create_client

    container = bootstrap()
    _, key = create_client(container.database.engine, "channel", "ledger benchmark")
    headers = {"Authorization": f"Bearer {key}"}
    outcomes: dict[str, int] = {}
    container.database.open_on_this_loop()
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
        queue = list(reversed(applications))

        async def submit() -> None:
            while queue:
                answer = await api.post("/v1/applications", json=queue.pop(), headers=headers)
                answer.raise_for_status()
                status = answer.json()["status"]
                outcomes[status] = outcomes.get(status, 0) + 1

        await asyncio.gather(*(submit() for _ in range(concurrency)))
    await container.aclose()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="decisions recorded")
    parser.add_argument("--database-url", help="an empty database instead of a SQLite file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="miaopi-ledger-"))
    population = work / "population.json"
    data = bench.synthetic_population(population)
    os.environ.update({
        "MIAOPI_DATABASE_URL": args.database_url or f"sqlite:///{work}/miaopi.db",
        "MIAOPI_RULES_DIR": str(REPO / "rules"),
        "MIAOPI_MOCK_DATASET": str(population),
        "MIAOPI_RATE_LIMIT_PER_MINUTE": str(10**9),
        "MIAOPI_RATE_LIMIT_BURST": str(10**9),
    })  # fmt: skip
    os.chdir(work)
    try:
        outcomes = asyncio.run(_record(bench.applications(data, args.n, 3), concurrency=16))

        from miaopi.bootstrap import open_database
        from miaopi.records.ledger_verify import verify
        from miaopi.settings import Settings

        engine = open_database(Settings()).engine
        print(f"ledger of {args.n} decisions {outcomes}, on {engine.dialect.name}")
        for _ in range(3):
            started, cpu = time.perf_counter(), time.process_time()
            verdict = verify(engine)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if not verdict.intact:
                raise SystemExit(f"the ledger does not verify: {verdict}")
            per = 1e3 / verdict.entries
            print(f"verify: {verdict.entries} entries in {wall:.2f} s = {wall * per:.3f} ms "
                  f"per entry ({cpu * per:.3f} ms of CPU)")  # fmt: skip
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A month's spot-check draw read whole: how long it takes and how long it stops the event loop.

``GET /v1/audit/periods/{YYYY-MM}`` answers every approval of the month, for anyone to
recompute the draw; a month of graduate season is hundreds of thousands of them. While it is
written, the worker's event loop must go on deciding: this script measures the largest delay
a task on the loop meets (a 1 ms sleep that wakes late) while the period is read, as an
auditor would read it, through the app in process. The draws are made up and written straight
to a SQLite database in a temporary directory (foreign keys off: no cases behind them).

  python bench/period.py                   # 100,000 draws
  python bench/period.py -n 300000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import httpx

REPO = Path(__file__).resolve().parents[1]


async def _read(app: object, key: str, period: str) -> tuple[int, float, float]:
    """(bytes, seconds, the loop's largest delay in seconds) of one read of the period."""
    late = 0.0
    reading = True

    async def watch() -> None:
        nonlocal late
        while reading:
            started = time.perf_counter()
            await anyio.sleep(0.001)
            late = max(late, time.perf_counter() - started - 0.001)

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as api,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(watch)
        started = time.perf_counter()
        answer = await api.get(f"/v1/audit/periods/{period}",
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        took = time.perf_counter() - started
        reading = False
    answer.raise_for_status()
    return len(answer.content), took, late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="draws in the month")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="miaopi-period-"))
    os.environ.update({
        "MIAOPI_DATABASE_URL": f"sqlite:///{work}/miaopi.db",
        "MIAOPI_RULES_DIR": str(REPO / "rules"),
    })  # fmt: skip
    os.chdir(work)
    try:
        from miaopi.api.app import create_app
        from miaopi.bootstrap import bootstrap
        from miaopi.records.clients import create_client
        from miaopi.records.tables import spot_check_draws

        container = bootstrap()
        _, key = create_client(container.database.engine, "admin", "period benchmark")
        with container.database.engine.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            conn.execute(spot_check_draws.insert(), [
                {"case_id": uuid.uuid4().hex, "period": "2026-10", "risk_class": "B",
                 "rate": "0.05", "selected": i % 20 == 0}
                for i in range(args.n)
            ])  # fmt: skip
            conn.commit()

        async def measure() -> None:
            container.database.open_on_this_loop()
            app = create_app(container)
            for _ in range(3):
                size, took, late = await _read(app, key, "2026-10")
                print(f"{args.n} draws: {size / 1e6:.1f} MB in {took:.2f} s; the event loop "
                      f"was up to {late * 1e3:.0f} ms late meanwhile")  # fmt: skip
            await container.aclose()

        print(f"Python {sys.version.split()[0]}")
        anyio.run(measure)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Instructions per decision, counted by valgrind's callgrind: a figure that does not move with
the machine's load, for comparing two builds of the service.

On this shared VM the CPU per decision of two runs of one build differs by up to 40 %, so a
change worth 2 % cannot be seen in `scripts/bench`. The instructions the service executes for
the same applications differ by about 1 % between runs. Instructions are not time (a cache
miss costs more than an addition), but for a change in what the code does they are the
steadiest measure this machine has; it has no hardware counters for `perf`.

The service's app is called in process over ASGI (uvicorn's share is not counted), with its
production settings, SQLite in a temporary directory (or, with ``--database-url``, an empty
database the run may fill: a PostgreSQL server's share is not counted, the driver's is) and the
registries over HTTP to `miaopi mock serve` in another process, without latency.
Instrumentation is switched on for the measured decisions only, after a warm-up: imports,
startup and the warm-up are not counted.
The same applications are decided, in the same order, on every run, each with an
``Idempotency-Key`` of its own as in ``bench/run.py``.

With ``--served`` the app is served by uvicorn in the measured process, as ``miaopi serve``
serves it, and a client in another process posts the applications over HTTP (keep-alive, one
connection per worker) and switches counting on and off itself: the HTTP server's share is
counted too. ``--http`` and ``--loop`` choose uvicorn's protocol and event loop.

  python bench/instructions.py                  # needs valgrind on the PATH; about a minute
  python bench/instructions.py --record bench/results.jsonl   # kept for the benchmarks page
  python bench/instructions.py -n 200 --concurrency 8
  python bench/instructions.py --served --http httptools --loop uvloop
  python bench/instructions.py --database-url postgresql+psycopg://miaopi@127.0.0.1:54330/empty
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py, beside this script

from miaopi.certificates.signing import generate_signing_key

REPO = Path(__file__).resolve().parents[1]


def measure(args: argparse.Namespace) -> None:
    """Under callgrind: decide applications, counting only the measured ones."""
    work = Path(tempfile.mkdtemp(prefix="miaopi-instructions-"))
    population = work / "population.json"
    data = bench.synthetic_population(population)
    key = subprocess.run([*bench.MIAOPI, "keys", "generate"], check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    mock_port = bench.free_port()
    env = {
        "MIAOPI_ENVIRONMENT": "production",
        "MIAOPI_SIGNING_KEY": generate_signing_key(),
        "MIAOPI_DATA_KEY": key,
        "MIAOPI_DATABASE_URL": args.database_url or f"sqlite:///{work}/miaopi.db",
        "MIAOPI_RULES_DIR": str(REPO / "rules"),
        # Everything runs ~50x slower under valgrind; a lookup must not run out of time.
        "MIAOPI_REGISTRY_TIMEOUT_S": "60",
        # The background passes run on a timer: under valgrind's slowdown a timer fires ~50
        # times as often per decision as it does at speed, and how often with the machine's
        # load. Off here; the events the decisions wrote are published once, counted, below.
        "MIAOPI_WEBHOOK_INTERVAL_S": "0",
        "MIAOPI_SECOND_TRY_INTERVAL_S": "0",
        "MIAOPI_BATCH_INTERVAL_S": "0",
        **{f"MIAOPI_REGISTRY_{name.upper()}_URL": f"http://127.0.0.1:{mock_port}/{name}"
           for name in ("police", "education", "overseas_credentials", "social_security",
                        "credit", "hrss")},
    }  # fmt: skip
    # Started last, right before the block that stops it: nothing above may leave it running.
    mocks = subprocess.Popen(
        [*bench.MIAOPI, "mock", "serve", "--port", str(mock_port)],
        env={**os.environ, "MIAOPI_MOCK_DATASET": str(population)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.environ.update(env)
    os.chdir(work)
    try:
        bench.wait_ready(f"http://127.0.0.1:{mock_port}/police/openapi.json", mocks, 300)
        if args.served:
            _serve(args, population, env)
        else:
            asyncio.run(_decide(args, data, env))
    finally:
        mocks.terminate()
        shutil.rmtree(work, ignore_errors=True)


async def _decide(
    args: argparse.Namespace, population: dict[str, Any], env: dict[str, str]
) -> None:
    from miaopi.api.app import create_app, settle_for_serving
    from miaopi.bootstrap import bootstrap

    container = bootstrap()
    keys = bench.make_keys(env, args.concurrency)
    app = create_app(container, serving=True)
    total = args.warmup + args.n
    bodies = [json.dumps(b, ensure_ascii=False).encode()
              for b in bench.applications(population, total, 2)]  # fmt: skip

    async def post(i: int, key: str) -> str:
        body = bodies[i]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
                   (b"authorization", f"Bearer {key}".encode()),
                   (b"idempotency-key", f"instructions-{i}".encode()),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/applications",
                 "raw_path": b"/v1/applications", "query_string": b"", "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
        await app(scope, receive, send)
        answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        status = sent[0]["status"]
        return json.loads(answer)["status"] if status == 201 else str(status)

    async with app.router.lifespan_context(app):
        settle_for_serving(container)
        await _decide_all(post, keys, range(args.warmup), args.concurrency)
        await container.deliverer.run_once()  # the warm-up's events: not counted
        _count(os.getpid(), "on")
        outcomes = await _decide_all(post, keys, range(args.warmup, total), args.concurrency)
        # Each decision's share of the background: its event published, in one pass.
        await container.deliverer.run_once()
        _count(os.getpid(), "off")
    print(json.dumps(outcomes, sort_keys=True), flush=True)


async def _decide_all(
    post: Callable[[int, str], Awaitable[str]], keys: list[str], which: range, concurrency: int
) -> dict[str, int]:
    """Post applications ``which`` from ``concurrency`` workers, each with its own key; count
    the outcomes."""
    outcomes: dict[str, int] = {}
    queue = iter(which)

    async def worker(w: int) -> None:
        for i in queue:
            outcome = await post(i, keys[w % len(keys)])
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return outcomes


def _count(pid: int, state: str) -> None:
    """Switch callgrind's counting in process ``pid``. Blocking on purpose: nothing else may
    run in the caller while counting is switched."""
    subprocess.run(["callgrind_control", "--instr", state, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def _serve(args: argparse.Namespace, population: Path, env: dict[str, str]) -> None:
    """uvicorn serving the app here; a client process posts and switches counting."""
    import threading

    import uvicorn

    from miaopi.api.app import create_app
    from miaopi.bootstrap import bootstrap
    from miaopi.telemetry.logs import logging_config

    keys = bench.make_keys(env, args.concurrency)
    port = bench.free_port()
    config = uvicorn.Config(
        create_app(bootstrap(), serving=True), host="127.0.0.1", port=port, http=args.http,
        loop=args.loop, log_config=logging_config(), access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    keys_file = population.with_name("keys.json")
    keys_file.write_text(json.dumps(keys), encoding="utf-8")
    client = subprocess.Popen(
        [sys.executable, __file__, "--client", "-n", str(args.n), "--warmup", str(args.warmup),
         "--concurrency", str(args.concurrency), "--port", str(port),
         "--population", str(population), "--keys", str(keys_file),
         "--server-pid", str(os.getpid())],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip

    def stop_when_done() -> None:
        client.wait()
        server.should_exit = True

    threading.Thread(target=stop_when_done, daemon=True).start()
    server.run()
    lines = client.communicate()[0].strip().splitlines()
    if client.returncode != 0 or not lines:
        sys.exit(f"the client failed (exit {client.returncode})")
    print(lines[-1], flush=True)


def _client(args: argparse.Namespace) -> None:
    """Post the applications to the served app; counting is on for the measured ones only."""
    import aiohttp

    keys = json.loads(Path(args.keys).read_text(encoding="utf-8"))
    population = json.loads(Path(args.population).read_text(encoding="utf-8"))
    total = args.warmup + args.n
    bodies = [json.dumps(b, ensure_ascii=False).encode()
              for b in bench.applications(population, total, 2)]  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"

    async def post_all() -> None:
        timeout = aiohttp.ClientTimeout(total=600)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(base, timeout=timeout, connector=connector) as client:

            async def post(i: int, key: str) -> str:
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                           "Idempotency-Key": f"instructions-{i}"}  # fmt: skip
                async with client.post("/v1/applications", data=bodies[i], headers=headers) as r:
                    answer = await r.json()
                    return answer["status"] if r.status == 201 else str(r.status)

            for _ in range(600):  # uvicorn starts ~50x slower under valgrind
                try:
                    async with client.get("/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
            await _decide_all(post, keys, range(args.warmup), args.concurrency)
            _count(args.server_pid, "on")
            outcomes = await _decide_all(post, keys, range(args.warmup, total), args.concurrency)
            _count(args.server_pid, "off")
        print(json.dumps(outcomes, sort_keys=True), flush=True)

    asyncio.run(post_all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="decisions counted")
    parser.add_argument("--warmup", type=int, default=40, help="decisions before counting")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--served", action="store_true", help="serve the app with uvicorn")
    parser.add_argument("--database-url", help="an empty database instead of a SQLite file")
    parser.add_argument("--http", default="h11", help="uvicorn's HTTP protocol (--served)")
    parser.add_argument("--loop", default="asyncio", help="uvicorn's event loop (--served)")
    parser.add_argument(
        "--record", metavar="FILE", help="append the result as a JSON line (bench/results.jsonl)"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--population", help=argparse.SUPPRESS)
    parser.add_argument("--keys", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _client(args)
        return
    if args.inner:
        measure(args)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (and its callgrind_control) on the PATH")
    out = Path(tempfile.mkdtemp(prefix="miaopi-callgrind-"))
    try:
        inner = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}/callgrind.%p", sys.executable, __file__, "--inner",
             "-n", str(args.n), "--warmup", str(args.warmup),
             "--concurrency", str(args.concurrency),
             *(["--database-url", args.database_url] if args.database_url else []),
             *(["--served", "--http", args.http, "--loop", args.loop] if args.served else [])],
            capture_output=True, text=True,
        )  # fmt: skip
        if inner.returncode != 0:
            sys.exit(f"the measured run failed:\n{inner.stdout}\n{inner.stderr[-3000:]}")
        total = sum(
            int(line.split()[1])
            for dump in out.glob("callgrind.*")
            for line in dump.read_text().splitlines()
            if line.startswith("totals:")
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    outcomes = inner.stdout.strip().splitlines()[-1]
    how = f"served by uvicorn ({args.http}, {args.loop})" if args.served else "in process"
    print(f"{total / args.n / 1e6:.2f} million instructions per decision ({args.n} decisions "
          f"{how}, concurrency {args.concurrency}, outcomes {outcomes})")  # fmt: skip
    if args.record:
        _record(args, total / args.n, how)


def _record(args: argparse.Namespace, per_decision: float, how: str) -> None:
    """Append this run to the results file the benchmarks page is made from (docs/)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    result = {
        "bench": "instructions",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        "python": f"{sys.implementation.name} {platform.python_version()} ({sys.executable})",
        "database": "postgresql" if args.database_url else "sqlite",
        "mode": how,
        "decisions": args.n,
        "concurrency": args.concurrency,
        "instructions_per_decision": round(per_decision),
    }
    with Path(args.record).open("a", encoding="utf-8") as out:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

"""The miaopi benchmark: decisions per second and where the time goes (README, "Benchmark").

One command (``scripts/bench``) runs, on this machine:

1. a synthetic population (``miaopi mock generate``) served by ``miaopi mock serve`` in a
   separate process, with the latency profile police 40 ms, education 120 ms, credit 60 ms,
   others 80 ms;
2. the service, ``miaopi serve``, with production settings: ``MIAOPI_ENVIRONMENT=production``,
   a data key, every registry over HTTP, the default rate limits (the load comes from one
   channel key per load worker, so no client exceeds them), on SQLite or on a PostgreSQL
   server started for the run;
3. this load generator: graduate and in_service applications from the population, each with
   an ``Idempotency-Key`` of its own as an HR system that retries safely sends them, at a fixed
   concurrency, then at a fixed rate of 100 decisions/s, then ``GET /healthz`` at the same
   concurrency for a ratio.

It prints throughput, end-to-end p50/p95/p99, p99 *overhead* (end to end minus the slowest
registry query of that decision, as the service recorded it; with its p50, p90 and p99.9, which
tell a floor every decision pays from stalls a few of them meet), the error rate, the service's CPU
time per decision from /proc (every process of the service, all work included), the CPU per
decision of the mocks, the load generator and the whole machine, rule evaluation p50/p99 per
phase from the service's own histograms (wall clock, and the evaluating thread's CPU), how long
its units of database work waited before they ran (the same), and the resident memory of each
service process before and after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import http1  # bench/http1.py, beside this script
import httpx
import stages  # bench/stages.py, beside this script
import uvloop

from miaopi.certificates.signing import generate_signing_key

REPO = Path(__file__).resolve().parents[1]
MIAOPI = [sys.executable, "-m", "miaopi.cli"]
T = TypeVar("T")
LATENCY = "police=40,education=120,credit=60,overseas_credentials=80,social_security=80,hrss=80"


def on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """Run the load on uvloop: it shares the machine with the service, and every millisecond of
    CPU it spends is one the service does not get."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def synthetic_population(path: Path, persons: int = 20_000) -> dict[str, Any]:
    """The benchmarks' population (seed 7), written to ``path`` for the mocks, and read back."""
    subprocess.run([*MIAOPI, "mock", "generate", "--seed", "7", "--persons", str(persons),
                    "-o", str(path)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def family(pid: int) -> list[int]:
    """A process and its children (the service's workers)."""
    try:
        return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except OSError:
        return [pid]


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its children (workers), from /proc."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def memory_mb(pid: int) -> list[tuple[float, float]]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MB, of each process of
    ``family(pid)``."""
    found = []
    for p in family(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        kb = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
        found.append((int(kb.get("VmRSS", 0)) / 1024, int(kb.get("VmHWM", 0)) / 1024))
    return found


def _mb(values: Iterable[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def applications(population: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Graduate and in_service applications, each with the applicant's own records."""
    shenzhen = [e for e in population["employers"]
                if e["region"].startswith("4403") and e["status"] == "active"]  # fmt: skip
    out: list[dict[str, Any]] = []
    rng = random.Random(seed)
    people = [p for p in population["persons"] if not p.get("postdoc")
              and not p.get("overseas_certifications") and p.get("diplomas")]  # fmt: skip
    for person in people:
        if person.get("social_security"):
            business_type = "in_service"
            uscc = person["social_security"][0]["employer_uscc"]
        else:
            business_type, uscc = "graduate", rng.choice(shenzhen)["uscc"]
        out.append({
            "business_type": business_type,
            "applicant": {"name": person["name"], "id_number": person["id_number"]},
            "employer": {"uscc": uscc},
            "claims": {"diploma_no": person["diplomas"][0]["diploma_no"]},
            "commitment": {"accepted": True, "version": "2026-01"},
            "consent": {"data_query": True},
        })  # fmt: skip
    rng.shuffle(out)
    return (out * (n // max(len(out), 1) + 1))[:n]


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    overheads_ms: list[float] = field(default_factory=list)
    errors: int = 0
    turned_away: int = 0  # 503 with Retry-After: the service was deciding all it could
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self, what: str) -> str:
        n = len(self.latencies_ms)
        return (
            f"{what}: {n} in {self.seconds:.1f} s = {n / self.seconds:.0f}/s; "
            f"end to end p50 {self.pct(self.latencies_ms, 0.5):.1f} ms, "
            f"p95 {self.pct(self.latencies_ms, 0.95):.1f} ms, "
            f"p99 {self.pct(self.latencies_ms, 0.99):.1f} ms; "
            + (f"p99 overhead {self.pct(self.overheads_ms, 0.99):.1f} ms "
               f"(p50 {self.pct(self.overheads_ms, 0.5):.1f}, "
               f"p90 {self.pct(self.overheads_ms, 0.9):.1f}, "
               f"p99.9 {self.pct(self.overheads_ms, 0.999):.1f}); "
               if self.overheads_ms else "")
            + f"errors {self.errors / max(n + self.errors, 1):.2%}"
            + (f"; turned away {self.turned_away}, each sent again after its Retry-After"
               if self.turned_away else "")
            + (f"; outcomes {self.outcomes}" if self.outcomes else "")
        )  # fmt: skip


async def drive(
    base: str,
    keys: list[str],
    bodies: list[dict[str, Any]],
    *,
    concurrency: int,
    duration_s: float,
    rate: float | None = None,
    path: str = "/v1/applications",
) -> Run:
    run = Run()
    # Encoded ahead, and only as many as a phase can use (5,000 distinct applicants, then
    # again from the first): encoding all 200,000 would delay the start for nothing.
    payloads = [json.dumps(b, ensure_ascii=False).encode() for b in bodies[:5000]]
    # Every application is a new one: its key has not been seen by the service (a replay would
    # skip the decision), so the service does the idempotency work a first submission costs.
    run_id = os.urandom(6).hex()
    server = urlsplit(base)
    connections = [
        http1.Connection(server.hostname or "127.0.0.1", server.port or 80)
        for _ in range(concurrency)
    ]
    try:
        next_index = 0
        started = time.perf_counter()
        stop_at = started + duration_s

        async def one(worker: int) -> None:
            nonlocal next_index
            connection = connections[worker]
            headers = {
                "Authorization": f"Bearer {keys[worker % len(keys)]}",
                "Content-Type": "application/json",
            }
            while True:
                now = time.perf_counter()
                if now >= stop_at:
                    return
                i = next_index
                next_index += 1
                if rate:
                    due = started + i / rate
                    if due >= stop_at:
                        return
                    if due > now:
                        await asyncio.sleep(due - now)
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(30):
                        if path == "/healthz":
                            answer = await connection.request("GET", path, {})
                        else:
                            answer = await connection.request("POST", path, {
                                **headers, "Idempotency-Key": f"bench-{run_id}-{i}"
                            }, payloads[i % len(payloads)])  # fmt: skip
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError, http1.ProtocolError):  # fmt: skip
                    run.errors += 1
                    continue
                status, content = answer.status, answer.body
                retry_after = answer.headers.get(b"retry-after")
                if status == 503 and retry_after:
                    # As an HR system that honours Retry-After: later, from the same worker.
                    run.turned_away += 1
                    await asyncio.sleep(float(retry_after))
                    continue
                elapsed = (time.perf_counter() - t0) * 1000
                if status != (200 if path == "/healthz" else 201):
                    run.errors += 1
                    continue
                run.latencies_ms.append(elapsed)
                if path != "/healthz":
                    case = json.loads(content)
                    slowest = max((e.get("elapsed_ms") or 0) for e in case["evidence"])
                    run.overheads_ms.append(elapsed - slowest)
                    run.outcomes[case["status"]] = run.outcomes.get(case["status"], 0) + 1

        await asyncio.gather(*(one(w) for w in range(concurrency)))
        run.seconds = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return run


_HISTOGRAMS = {  # the service's histograms the benchmark reads, by what they measure
    "wall": "miaopi_rule_evaluation_seconds",
    "cpu": "miaopi_rule_evaluation_cpu_seconds",
    "wait": "miaopi_database_wait_seconds",
}


def histograms(base: str) -> dict[str, dict[float, float]]:
    """Some of the service's histograms (``_HISTOGRAMS``): count per upper bound, summed over
    label values (and workers)."""
    buckets: dict[str, dict[float, float]] = {kind: {} for kind in _HISTOGRAMS}
    names = {f"{name}_bucket": kind for kind, name in _HISTOGRAMS.items()}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        m = re.match(r'(\w+)\{(?:.*,)?le="([^"]+)".*\} ([0-9.e+]+)', line)
        if m and m.group(1) in names:
            kind = buckets[names[m.group(1)]]
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            kind[le] = kind.get(le, 0) + float(m.group(3))
    return buckets


def quantiles(
    before: dict[str, dict[float, float]],
    after: dict[str, dict[float, float]],
    kind: str,
    counted: str = "evaluations",
) -> str:
    """p50 and p99 of one histogram during one phase, as bucket bounds of the histogram."""
    delta = {le: after[kind].get(le, 0) - before[kind].get(le, 0) for le in after[kind]}
    total = delta.get(float("inf"), 0)
    if not total:
        return "n/a"
    top = max((le for le in delta if le != float("inf")), default=0.0)

    def bound(q: float) -> str:
        le = min(le for le in delta if delta[le] >= q * total)
        return f"> {top * 1000:g} ms" if le == float("inf") else f"≤ {le * 1000:g} ms"

    return f"p50 {bound(0.5)}, p99 {bound(0.99)} ({total:.0f} {counted})"


def make_keys(env: dict[str, str], n: int) -> list[str]:
    """Channel keys, one per load worker (a channel may submit for any employer)."""
    from miaopi.bootstrap import open_database
    from miaopi.records.clients import create_client
    from miaopi.settings import Settings

    settings = Settings(
        database_url=env["MIAOPI_DATABASE_URL"], data_key=env["MIAOPI_DATA_KEY"],
        environment="production", _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    db = open_database(settings)
    try:
        return [create_client(db.engine, "channel", f"bench {i}")[1] for i in range(n)]
    finally:
        db.dispose()


def slow_receiver(sleep_s: float) -> Any:
    """A webhook receiver on loopback that takes ``sleep_s`` to answer each event."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(sleep_s)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=20, help="seconds per load phase")
    parser.add_argument("--rate", type=float, default=100, help="decisions/s of the paced phase")
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument(
        "--webhook-sleep", type=float, metavar="S",
        help="register a webhook endpoint for every load client, on a receiver on loopback "
        "that takes S seconds to answer each event (policy §10: a slow receiver must cost "
        "decisions nothing)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", metavar="FILE",
        help="record the service with py-spy during the first phase (collapsed stacks to FILE)",
    )  # fmt: skip
    args = parser.parse_args()
    # py-spy from the PATH or beside this Python: a developer's tool, not a dependency.
    beside = str(Path(sys.executable).parent)
    spy_bin = shutil.which("py-spy") or shutil.which("py-spy", path=beside)
    if args.profile and not spy_bin:
        parser.error("--profile needs py-spy on the PATH (pip install py-spy)")

    work = Path(tempfile.mkdtemp(prefix="miaopi-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    pg_started = False
    try:
        population = work / "population.json"
        data = synthetic_population(population, args.persons)

        mock_port, port = free_port(), free_port()
        env = {**os.environ, "MIAOPI_MOCK_DATASET": str(population),
               "MIAOPI_MOCK_LATENCY_MS": LATENCY}  # fmt: skip
        mocks = subprocess.Popen([*MIAOPI, "mock", "serve", "--port", str(mock_port)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        procs.append(mocks)

        if args.database == "postgres":
            url = subprocess.run([str(REPO / "scripts" / "postgres"), "start"], check=True,
                                 capture_output=True, text=True,
                                 env={**os.environ, "PGPORT": "25439"}).stdout.strip()  # fmt: skip
            pg_started = True
        else:
            url = f"sqlite:///{work}/miaopi.db"
        service_env = {
            **os.environ,
            "MIAOPI_ENVIRONMENT": "production",
            "MIAOPI_SIGNING_KEY": generate_signing_key(),
            "MIAOPI_DATA_KEY": subprocess.run([*MIAOPI, "keys", "generate"], check=True,
                                              capture_output=True, text=True).stdout.strip(),
            "MIAOPI_DATABASE_URL": url,
            "MIAOPI_RULES_DIR": str(REPO / "rules"),
            **{f"MIAOPI_REGISTRY_{name.upper()}_URL": f"http://127.0.0.1:{mock_port}/{name}"
               for name in ("police", "education", "overseas_credentials", "social_security",
                            "credit", "hrss")},
            # The slow receiver of --webhook-sleep, on loopback: listed by the operator.
            "MIAOPI_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        }  # fmt: skip
        bodies = applications(data, 200_000, 2)
        employers = {b["employer"]["uscc"] for b in bodies}
        keys = make_keys(service_env, max(args.concurrency, 16))
        service = subprocess.Popen(
            [*MIAOPI, "serve", "--port", str(port), "--workers", str(args.workers)],
            env=service_env, cwd=work, stdout=subprocess.DEVNULL,
            stderr=open(work / "service.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        procs.append(service)
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"http://127.0.0.1:{mock_port}/police/openapi.json", mocks)
        wait_ready(f"{base}/readyz", service)
        if args.webhook_sleep is not None:
            receiver = slow_receiver(args.webhook_sleep)
            hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            with httpx.Client(base_url=base, timeout=10) as http:
                for key in keys:
                    http.post("/v1/webhook-endpoints", json={"url": hook},
                              headers={"Authorization": f"Bearer {key}"}).raise_for_status()
            print(f"webhooks: every decision's event goes to a receiver that answers in "
                  f"{args.webhook_sleep:g} s")  # fmt: skip
        # Every process of the run is on this interpreter; how it was built moves the figures
        # by a tenth or more (README, "Two commands").
        python = f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"
        print(f"miaopi benchmark: {args.database}, {args.workers} worker(s), "
              f"{len(employers)} employers, {os.cpu_count()} CPUs, mocks {LATENCY}, "
              f"{python}")  # fmt: skip

        on_uvloop(drive(base, keys, bodies, concurrency=8, duration_s=3))  # warm up
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [str(spy_bin), "record", "-p", str(service.pid), "--subprocesses", "--gil",
                 "-r", "100", "-d", str(int(args.duration)), "-f", "raw", "-o", args.profile],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        memory0 = memory_mb(service.pid)
        split0, mocks0, load0 = cpu_split(service.pid), sum(cpu_split(mocks.pid)), own_cpu()
        busy0, hist0 = machine_busy(), histograms(base)
        full = on_uvloop(drive(base, keys, bodies[5000:], concurrency=args.concurrency,
                               duration_s=args.duration))  # fmt: skip
        split1, mocks1, load1 = cpu_split(service.pid), sum(cpu_split(mocks.pid)), own_cpu()
        busy1, hist1 = machine_busy(), histograms(base)
        cpu = sum(split1) - sum(split0)
        if spy is not None:
            spy.wait()
        print(full.line(f"decisions at concurrency {args.concurrency}"))
        print(
            f"service CPU: {cpu:.1f} s for {len(full.latencies_ms)} decisions = "
            f"{cpu * 1000 / max(len(full.latencies_ms), 1):.2f} ms per decision "
            f"(user {split1[0] - split0[0]:.1f} s, system {split1[1] - split0[1]:.1f} s)"
        )
        per = 1000 / max(len(full.latencies_ms), 1)
        if args.profile:
            print(f"where the service's CPU went (py-spy, {args.profile}):")
            print(stages.report(Path(args.profile), cpu * per))
        print(f"sharing the machine: mock registries {(mocks1 - mocks0) * per:.2f} ms, "
              f"load generator {(load1 - load0) * per:.2f} ms of CPU per decision; "
              f"machine {(busy1[0] - busy0[0]) * per:.2f} ms in all "
              f"({(busy1[0] - busy0[0]) / (busy1[1] - busy0[1]):.0%} busy)")  # fmt: skip
        paced = on_uvloop(drive(base, keys, bodies[100_000:], concurrency=args.concurrency,
                                duration_s=args.duration, rate=args.rate))  # fmt: skip
        hist2 = histograms(base)
        print(paced.line(f"decisions paced at {args.rate:g}/s"))
        for kind, what in (("wall", "wall clock"), ("cpu", "CPU of the evaluating thread")):
            print(f"rule evaluation, {what}: at concurrency {args.concurrency} "
                  f"{quantiles(hist0, hist1, kind)}; "
                  f"paced {quantiles(hist1, hist2, kind)}")  # fmt: skip
        # A pool too small for the load, or workers queueing for SQLite's write slot.
        print(f"database work's wait before it ran: at concurrency {args.concurrency} "
              f"{quantiles(hist0, hist1, 'wait', 'units of work')}; "
              f"paced {quantiles(hist1, hist2, 'wait', 'units of work')}")  # fmt: skip
        decided = len(full.latencies_ms) + len(paced.latencies_ms)
        memory2 = memory_mb(service.pid)
        # With several workers the first process is uvicorn's supervisor, then each worker.
        print(f"service memory, resident, MB per process: {_mb(r for r, _ in memory0)} before "
              f"the load, {_mb(r for r, _ in memory2)} after {decided} decisions "
              f"(peak {_mb(h for _, h in memory2)})")  # fmt: skip
        split2 = cpu_split(service.pid)
        health = on_uvloop(drive(base, keys, bodies, concurrency=args.concurrency,
                                 duration_s=min(args.duration, 10), path="/healthz"))  # fmt: skip
        health_cpu = sum(cpu_split(service.pid)) - sum(split2)
        print(health.line(f"GET /healthz at concurrency {args.concurrency}"))
        # What serving any request costs (HTTP, middlewares, metrics, logs): the floor under
        # every decision's own work.
        print(f"service CPU per /healthz request: "
              f"{health_cpu * 1000 / max(len(health.latencies_ms), 1):.2f} ms")  # fmt: skip
        ratio = (len(full.latencies_ms) / full.seconds) / (
            len(health.latencies_ms) / health.seconds
        )
        print(f"decisions/s ÷ healthz/s: {ratio:.2f}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg_started:
            subprocess.run([str(REPO / "scripts" / "postgres"), "stop"],
                           env={**os.environ, "PGPORT": "25439"}, check=False)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

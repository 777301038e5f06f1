"""Rule evaluation in isolation: the CPU of each evaluation of the benchmark's applications.

The issue's target is a rule evaluation p99 of at most 0.5 ms. Under load the service's
histogram mixes the engine's cost with whatever else the process does (the collector, the GIL,
a busy VM); this script measures the engine alone. It gathers the evidence of the benchmark's
applications once (from the mock registries, in process, no latency), then evaluates the
facts of every application again and again, as a decision does (`evaluate`, and the
entitlements of an approval), and prints the quantiles of the evaluating thread's CPU by
outcome.

  python bench/rules.py                     # 400 applications, 10 rounds
  python bench/rules.py -n 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py, beside this script

REPO = Path(__file__).resolve().parents[1]


async def _judged(population: dict[str, Any], n: int) -> list[tuple[Any, dict[str, Any]]]:
    """(ruleset, facts) of the first n benchmark applications, their evidence gathered once."""
    from miaopi.bootstrap import bootstrap
    from miaopi.decision.service import judge
    from miaopi.domain import Application
    from miaopi.evidence.gather import gather

    container = bootstrap()
    decider = container.decider
    day = container.clock().date()
    judged = []
    for body in bench.applications(population, n, 2):
        application = Application.from_json(body)
        ruleset = decider.ruleset_for(application.business_type, day)
        answers = await gather(container.registries, list(ruleset.queries), application)
        facts = judge(container.rule_engine, ruleset, application, day, answers.values()).facts
        judged.append((ruleset, facts))
    await container.aclose()
    return judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=400, help="applications")
    parser.add_argument("--rounds", type=int, default=10, help="evaluations of each")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="miaopi-rules-"))
    population = work / "population.json"
    data = bench.synthetic_population(population)
    os.environ.update({
        "MIAOPI_DATABASE_URL": f"sqlite:///{work}/miaopi.db",
        "MIAOPI_RULES_DIR": str(REPO / "rules"),
        "MIAOPI_MOCK_DATASET": str(population),
    })  # fmt: skip
    os.chdir(work)

    from miaopi.decision.outcome import outcome
    from miaopi.eligibility.engine import RuleEngine
    from miaopi.eligibility.evaluate import evaluate

    async def measure() -> dict[str, list[float]]:
        judged = await _judged(data, args.n)
        engine = RuleEngine()  # a fresh one, as a server process has
        for ruleset, _ in judged:
            engine.prepare(ruleset)
        gc.collect()
        gc.freeze()  # as a server process does (api.app.settle_for_serving)
        costs: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for ruleset, facts in judged:
                started = time.thread_time_ns()
                verdict = outcome(evaluate(engine, ruleset, facts).criteria)
                if verdict == "approved":
                    engine.entitled(ruleset, facts)
                costs.setdefault(verdict, []).append((time.thread_time_ns() - started) / 1e6)
        return costs

    try:
        costs = asyncio.run(measure())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    every = sorted(c for values in costs.values() for c in values)

    def line(what: str, values: list[float]) -> str:
        values = sorted(values)
        q = [values[min(len(values) - 1, int(p * len(values)))] for p in (0.5, 0.9, 0.99)]
        return (f"{what:<10} {len(values):>6}  p50 {q[0]:.3f}  p90 {q[1]:.3f}  p99 {q[2]:.3f}  "
                f"max {values[-1]:.3f} ms")  # fmt: skip

    print(f"rule evaluation, CPU of the evaluating thread ({args.n} applications x "
          f"{args.rounds} rounds, Python {sys.version.split()[0]})")  # fmt: skip
    print(line("all", every))
    for verdict in sorted(costs):
        print(line(verdict, costs[verdict]))


if __name__ == "__main__":
    main()

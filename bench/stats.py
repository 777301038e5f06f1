"""The authority's figures for a year of cases: how long ``GET /v1/stats`` takes to count them.

A year is made up and written straight to an empty database (250,000 cases by default, the
shape of a city's year: about 61 % approved at once, 31 % rejected, 8 % referred; a referral's
reasons, second tries and counter reviews; spot checks at 5 %; certificates checked and
households registered for most approvals). The figures are then counted for the whole year,
with no grouping and by business type, district and employer, each the best of three runs, as
``records/stats.figures`` counts them for the endpoint.

  python bench/stats.py --database-url postgresql+psycopg://miaopi@127.0.0.1:25432/empty
  python bench/stats.py -n 20000                          # SQLite in a temporary directory
  python bench/stats.py --database-url … --record bench/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
TYPES = ("graduate", "graduate", "graduate", "in_service", "overseas_returnee", "postdoc")
DISTRICTS = ("440303", "440304", "440305", "440306", "440307", "440308", "440309", "440310")
REASONS = ("no_criminal_record", "social_security_months", "degree_verified", "identity")
CHUNK = 5_000


def _fill(engine: Any, n: int, first: date, seed: int = 7) -> None:
    from miaopi.records.certificate_tables import case_stages
    from miaopi.records.clients import create_client
    from miaopi.records.report_tables import certificate_checks, referral_reasons
    from miaopi.records.sealing import key_of
    from miaopi.records.tables import audit_tasks, cases, reviews, rulesets, second_tries

    rng = random.Random(seed)
    key = key_of(engine.dialect)
    client, _ = create_client(engine, "channel", "stats benchmark")
    sealed = {c: key.seal("x", f"cases.{c}") for c in ("applicant_name", "applicant_id_number")}
    request, evidence = key.seal("{}", "cases.request"), key.seal("[]", "cases.evidence")
    employers = [f"9144030{i:04d}MA5TEST" for i in range(2_000)]
    with engine.begin() as conn:
        conn.execute(insert(rulesets).values(
            fingerprint="bench", business_type="graduate", version="bench", definition={},
            first_used_at=datetime.now(UTC)))  # fmt: skip
    done = 0
    while done < n:
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in (
            "cases", "reasons", "tries", "reviews", "tasks", "stages", "checks")}  # fmt: skip
        for i in range(done, min(n, done + CHUNK)):
            case_id = f"{i:032d}"
            day = first + timedelta(days=int(i * 365 / n))
            at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
            at += timedelta(seconds=i % 30_000)
            roll = rng.random()
            outcome = "approved" if roll < 0.61 else "rejected" if roll < 0.92 else "referred"
            status = outcome
            employer = employers[rng.randrange(len(employers))]
            rows["cases"].append({
                "id": case_id, "status": status, "outcome": outcome,
                "business_type": rng.choice(TYPES), **sealed, "employer_uscc": employer,
                "employer_name": "benchmark", "submitted_by": client.id,
                "approval_number": f"4403-{day.year}-{i:06d}" if outcome == "approved" else None,
                "application_date": day, "ruleset_fingerprint": "bench", "request": request,
                "decision": {"outcome": outcome}, "evidence": evidence, "submitted_at": at,
                "decided_at": at + timedelta(milliseconds=150), "elapsed_ms": rng.uniform(80, 400),
                "employer_region": DISTRICTS[hash(employer) % len(DISTRICTS)],
            })  # fmt: skip
            if outcome == "referred":
                for reason in rng.sample(REASONS, rng.randint(1, 2)):
                    rows["reasons"].append({"case_id": case_id, "criterion": reason,
                                            "result": "unknown"})  # fmt: skip
                if rng.random() < 0.3:
                    rows["tries"].append({
                        "id": f"t{i:031d}", "case_id": case_id, "attempt": 1, "status": "decided",
                        "due_at": at, "outcome": "approved", "approval_number": f"T-{i}",
                        "decided_at": at + timedelta(minutes=5), "created_at": at})  # fmt: skip
                else:
                    closed = rng.random() < 0.9
                    rows["reviews"].append({
                        "id": f"r{i:031d}", "case_id": case_id,
                        "status": "closed" if closed else "waiting", "referred_on": day,
                        "due_date": day + timedelta(days=7), "created_at": at,
                        "outcome": rng.choice(("approved", "rejected")) if closed else None,
                        "decided_at": at + timedelta(days=rng.randint(1, 6)) if closed else None,
                    })  # fmt: skip
            if outcome == "approved":
                if rng.random() < 0.05:
                    rows["tasks"].append({
                        "id": f"a{i:031d}", "case_id": case_id, "kind": "spot_check",
                        "status": "closed" if rng.random() < 0.7 else "open",
                        "due_date": day + timedelta(days=90), "created_at": at})  # fmt: skip
                if rng.random() < 0.8:
                    rows["checks"].append({"checked_at": at + timedelta(days=1),
                                           "status": "valid", "case_id": case_id})  # fmt: skip
                    rows["stages"].append({
                        "id": f"s{i:031d}", "case_id": case_id, "stage": "household_registered",
                        "subject": "", "on_day": day + timedelta(days=1), "detail": {},
                        "recorded_by": client.id, "recorded_at": at})  # fmt: skip
        with engine.begin() as conn:
            for name, table in (("cases", cases), ("reasons", referral_reasons),
                                ("tries", second_tries), ("reviews", reviews),
                                ("tasks", audit_tasks), ("stages", case_stages),
                                ("checks", certificate_checks)):  # fmt: skip
                if rows[name]:
                    conn.execute(insert(table), rows[name])
        done += CHUNK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=250_000, help="cases in the year")
    parser.add_argument("--database-url", help="an empty database (default: SQLite, temporary)")
    parser.add_argument("--record", type=Path, help="append the result to this JSON-lines file")
    args = parser.parse_args()

    from miaopi.records.engines import make_engine
    from miaopi.records.migrate import upgrade
    from miaopi.records.sealing import DataKey, generate_key
    from miaopi.records.stats import figures

    tmp = tempfile.mkdtemp(prefix="miaopi-stats-")
    try:
        url = args.database_url or f"sqlite:///{tmp}/stats.db"
        engine = make_engine(url, DataKey(generate_key()))
        upgrade(engine)
        first = date(2026, 1, 1)
        started = time.perf_counter()
        _fill(engine, args.n, first)
        # As autovacuum leaves a table some time after a bulk of writes: its statistics and
        # visibility map up to date, so a year is read from the report index alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        filled_s = time.perf_counter() - started
        last, timings = first + timedelta(days=364), {}
        for group_by in (None, "business_type", "district", "employer"):
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                found = figures(engine, first, last, group_by, last)
                runs.append(time.perf_counter() - t0)
            if found["totals"]["applications"] != args.n:
                raise SystemExit(f"counted {found['totals']['applications']} of {args.n} cases")
            timings[group_by or "none"] = round(min(runs), 3)
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO).stdout.strip()  # fmt: skip
    result = {"bench": "stats", "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "commit": commit, "database": url.split(":")[0].split("+")[0], "cases": args.n,
              "seconds_by_group": timings, "filled_in_s": round(filled_s, 1)}  # fmt: skip
    print(json.dumps(result))
    if args.record:
        with args.record.open("a") as out:
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

"""Prometheus metrics: what the service counts and times, summed over worker processes.

Metrics are prometheus_client's. With several worker processes (``miaopi serve --workers N``)
each worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them, so a
scrape that lands on any worker sees the whole instance; ``miaopi serve`` sets that directory up
before the workers start. Labels never carry personal data: business types, outcomes,
registries, statuses and route templates only.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10)
RULE_BUCKETS = (
    0.0001,
    0.0002,
    0.0003,
    0.0004,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.01,
    0.05,
)

DECISIONS = Counter(
    "miaopi_decisions_total",
    "Decisions made, by business type, outcome and purpose (case or dry_run)",
    ["business_type", "outcome", "purpose"],
)
DECISION_SECONDS = Histogram(
    "miaopi_decision_seconds",
    "Time to decide one application: registries and rules, not recording",
    ["business_type"],
    buckets=LATENCY_BUCKETS,
)
RULE_SECONDS = Histogram(
    "miaopi_rule_evaluation_seconds",
    "Time to evaluate one application's rules",
    ["business_type"],
    buckets=RULE_BUCKETS,
)
RULE_CPU_SECONDS = Histogram(
    "miaopi_rule_evaluation_cpu_seconds",
    "CPU time the evaluating thread spent on one application's rules (waits for the GIL, "
    "which the wall-clock histogram includes, do not count)",
    ["business_type"],
    buckets=RULE_BUCKETS,
)
REGISTRY_SECONDS = Histogram(
    "miaopi_registry_query_seconds",
    "Time of one registry query, its retry included",
    ["registry", "query"],
    buckets=LATENCY_BUCKETS,
)
REGISTRY_QUERIES = Counter(
    "miaopi_registry_queries_total",
    "Registry queries by result status (ok, no_record, unavailable, invalid)",
    ["registry", "status"],
)
BREAKER_STATE = Gauge(
    "miaopi_registry_breaker_state",
    "Circuit breaker per registry: 0 closed, 1 half-open, 2 open (the worst of the workers)",
    ["registry"],
    multiprocess_mode="livemax",
)
HTTP_REQUESTS = Counter(
    "miaopi_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "miaopi_http_request_seconds",
    "HTTP request duration by route",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
CHECKPOINT_SECONDS = Histogram(
    "miaopi_sqlite_checkpoint_seconds",
    "SQLite's WAL checkpoints by the checkpoint thread; with holding_slot, writers waited",
    ["holding_slot"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
WAL_PAGES = Gauge(
    "miaopi_sqlite_wal_pages",
    "Pages in SQLite's write-ahead log at the checkpoint thread's last round (growing: stuck)",
    multiprocess_mode="livemax",
)
DATABASE_WAIT_SECONDS = Histogram(
    "miaopi_database_wait_seconds",
    "Time a request's unit of database work waited before it ran: for a connection of its "
    "process's pool on PostgreSQL (MIAOPI_DATABASE_POOL_SIZE), on SQLite for the write slot "
    "another worker or the checkpoint thread held",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

DECISIONS_IN_FLIGHT = Gauge(
    "miaopi_decisions_in_flight",
    "Decisions and dry runs being made now (summed over the workers)",
    multiprocess_mode="livesum",
)
DECISIONS_TURNED_AWAY = Counter(
    "miaopi_decisions_turned_away_total",
    "Applications and dry runs answered 503 because their process was making "
    "MIAOPI_MAX_DECISIONS_IN_FLIGHT decisions already",
)

LOG_LINES_DROPPED = Counter(
    "miaopi_log_lines_dropped_total",
    "Log lines dropped: stderr stopped taking them, and as many as may wait were waiting",
)

BREAKER_CODES = {"closed": 0, "half_open": 1, "open": 2}


@cache
def series(metric: MetricWrapperBase, *labels: str) -> Any:
    """The metric's time series for these label values, looked up once.

    ``labels()`` takes a lock and checks its arguments on every call, about 2 µs, and a
    decision made some twenty such calls. Every label value here comes from a closed set
    (business types, outcomes, registries, statuses, route templates, HTTP's methods), so
    this stays small.
    """
    return metric.labels(*labels)


def observe_decision(decision: Any, purpose: str) -> None:
    """Record one decision: its outcome, its time, its rules' time and every registry answer."""
    business_type = decision.application.business_type
    series(DECISIONS, business_type, decision.outcome, purpose).inc()
    series(DECISION_SECONDS, business_type).observe(decision.elapsed_ms / 1000)
    series(RULE_SECONDS, business_type).observe(decision.rules_ms / 1000)
    series(RULE_CPU_SECONDS, business_type).observe(decision.rules_cpu_ms / 1000)
    for evidence in decision.evidence:
        if evidence.registry == "revocations":
            continue  # our own database, not a registry
        series(REGISTRY_SECONDS, evidence.registry, evidence.query).observe(
            evidence.elapsed_ms / 1000
        )
        series(REGISTRY_QUERIES, evidence.registry, evidence.status).inc()


def forget_dead_workers() -> None:
    """Drop the gauges of worker processes that are gone, from a multiprocess metrics directory.

    A gauge of the ``live*`` kinds (decisions in flight, a breaker's state, SQLite's WAL) sums
    or takes the worst of every worker's file. A worker that was killed, and that uvicorn
    replaced, left its file behind, and with it its last values: after both workers of a
    ``miaopi serve --workers 2`` were killed with six decisions in flight, ``/metrics`` said
    six decisions were in flight for as long as the service ran. Each worker calls this as it
    starts; counters and histograms keep the dead workers' counts, as they should.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _multiprocess.mark_process_dead(pid, directory)
        except PermissionError:  # alive, another user's
            pass


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, summed over worker processes when there are many."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST



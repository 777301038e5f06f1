"""What operators see: the request id, JSON log lines and Prometheus metrics.

Metrics are prometheus_client's. With several worker processes (``miaopi serve --workers N``)
each worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them, so a
scrape that lands on any worker sees the whole instance; ``miaopi serve`` sets that directory up
before the workers start. Labels never carry personal data: business types, outcomes,
registries, statuses and route templates only.
"""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TextIO

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

# The id of the request being served, for log lines and the registries' X-Request-ID header.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

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


def stamp_request_ids() -> None:
    """Give every log record the id of the request it was made in, whatever its handler."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "stamps_request_id", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    make.stamps_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request id; for log shippers, not for reading."""

    FIELDS = ("method", "route", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                body[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception's message may quote the request.
            body["exception"] = record.exc_info[0].__name__
        return json.dumps(body, ensure_ascii=False)


class NonBlockingStreamHandler(logging.Handler):
    """Writes each line at once while the stream takes it, and never waits for one that does not.

    A request's line is logged on the event loop's thread. A reader of stderr that stops
    reading (a log driver that blocks when it falls behind, as Docker's does by default) made
    that write wait once the pipe was full, and the whole process with it: ``miaopi serve``
    with nobody reading its stderr answered 254 requests and then none. A line is written
    where it is logged only while the stream can take it without waiting (``poll``: a pipe
    takes up to ``PIPE_BUF`` bytes whole then) and nothing is waiting before it, so lines stay
    in order and a process that ends, however it ends, has written them. Otherwise it waits
    for a thread that writes what has piled up; past ``capacity`` lines waiting, lines are
    dropped and counted (``miaopi_log_lines_dropped_total``). At exit (``logging.shutdown``)
    the lines waiting are written, for up to ``drain_s``: a stream that never takes them must
    not keep the process.
    """

    def __init__(
        self, stream: TextIO | None = None, capacity: int = 10_000, drain_s: float = 2.0
    ) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.capacity, self.drain_s = capacity, drain_s
        try:
            self._fd: int | None = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a test's
            self._fd = None
        self._poll = select.poll()
        if self._fd is not None:
            self._poll.register(self._fd, select.POLLOUT)
        self._waiting: deque[str] = deque()
        self._writing = False  # the writer has lines in hand, outside the queue
        # Not the handler's own lock: logging.shutdown holds that one while it flushes.
        self._guard = threading.Lock()
        self._closed = False
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._start()
        _open_handlers.add(self)

    def _start(self) -> None:
        if not self._closed:
            threading.Thread(target=self._write_waiting, name="log-writer", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        if self._fd is None:
            self.stream.write(line)
            self.stream.flush()
            return
        with self._guard:
            if not self._waiting and not self._writing:
                data = line.encode("utf-8", "backslashreplace")
                if len(data) <= select.PIPE_BUF and self._poll.poll(0):
                    with suppress(OSError):  # a closed stream: nowhere to say so
                        os.write(self._fd, data)
                    return
            if len(self._waiting) >= self.capacity:
                LOG_LINES_DROPPED.inc()
                return
            self._idle.clear()
            self._waiting.append(line)
        self._wake.set()

    def _write_waiting(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._guard:
                    if not self._waiting:
                        self._writing = False
                        self._idle.set()
                        if self._closed:
                            return
                        break
                    lines = list(self._waiting)
                    self._waiting.clear()
                    self._writing = True
                with suppress(OSError):  # a closed stream: the lines are lost
                    for chunk in _whole_lines(lines):
                        data = memoryview(chunk)
                        while data:
                            data = data[os.write(self._fd, data) :]  # type: ignore[arg-type]

    def flush(self) -> None:
        """Wait, up to ``drain_s``, until every line waiting has been written."""
        self._idle.wait(self.drain_s)

    def close(self) -> None:
        """The writer ends once it has written what is waiting (``flush`` waits for that)."""
        with self._guard:
            self._closed = True
        self._wake.set()
        super().close()


# A forked child has the handlers' lines but not their writers: it starts its own. Registered
# once, for the handlers still there: a registration per handler kept every handler ever made.
_open_handlers: weakref.WeakSet[NonBlockingStreamHandler] = weakref.WeakSet()


def _start_writers() -> None:
    for handler in list(_open_handlers):
        handler._start()


os.register_at_fork(after_in_child=_start_writers)


def _whole_lines(lines: list[str]) -> Iterator[bytes]:
    """The lines in writes of up to ``PIPE_BUF`` bytes, each of whole lines: the workers of
    ``miaopi serve --workers N`` share one stderr, and a pipe keeps only such writes apart."""
    chunk = bytearray()
    for line in lines:
        data = line.encode("utf-8", "backslashreplace")
        if chunk and len(chunk) + len(data) > select.PIPE_BUF:
            yield bytes(chunk)
            chunk.clear()
        chunk += data
    if chunk:
        yield bytes(chunk)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """For ``logging.config.dictConfig`` and uvicorn's ``log_config``: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"()": NonBlockingStreamHandler, "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # Uvicorn's own access log is off (`miaopi.http` logs requests with their id).
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # httpx logs each registry URL at INFO: no personal data, but one line per query.
            "httpx": {"level": "WARNING"},
        },
    }

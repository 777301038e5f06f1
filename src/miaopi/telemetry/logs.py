"""Log lines: JSON on stderr, each with the request's id, never waiting for a slow reader."""

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
from typing import Any, TextIO

from miaopi.telemetry.metrics import LOG_LINES_DROPPED

# The id of the request being served, for log lines and the registries' X-Request-ID header.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

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

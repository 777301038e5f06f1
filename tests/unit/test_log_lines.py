"""Log lines reach stderr in order, and a stderr nobody reads never makes the logger wait."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

from miaopi.telemetry.logs import NonBlockingStreamHandler, _whole_lines
from miaopi.telemetry.metrics import LOG_LINES_DROPPED


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for handler in _made:  # their writers end before the pipe they write to does
        handler.flush()
        handler.close()
    _made.clear()
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


_made: list[NonBlockingStreamHandler] = []


def _logger(write_fd: int, capacity: int) -> logging.Logger:
    handler = NonBlockingStreamHandler(os.fdopen(write_fd, "w", closefd=False), capacity=capacity)
    _made.append(handler)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test.log_lines.{write_fd}.{time.monotonic_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def _dropped() -> float:
    return LOG_LINES_DROPPED._value.get()  # type: ignore[attr-defined]


def test_a_line_is_in_the_stream_as_soon_as_it_is_logged(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.set_blocking(read, False)
    _logger(write, capacity=10).info("first")
    assert os.read(read, 100) == b"first\n"  # no writer thread had to run first


def test_a_stream_nobody_reads_never_makes_the_logger_wait(pipe: tuple[int, int]) -> None:
    read, write = pipe
    logger, dropped_before = _logger(write, capacity=50), _dropped()
    line = "x" * 290

    def log_all() -> None:
        for n in range(1000):  # 300 kB: a pipe holds 64 kB
            logger.info("%04d %s", n, line)

    logging_thread = threading.Thread(target=log_all, daemon=True)
    logging_thread.start()
    logging_thread.join(timeout=5)
    assert not logging_thread.is_alive(), "the logger waited for the full pipe"
    dropped = _dropped() - dropped_before
    assert dropped > 0

    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = received.decode().splitlines()
        if len(lines) + dropped >= 1000:
            break
        time.sleep(0.05)
    numbers = [int(text[:4]) for text in received.decode().splitlines()]
    # Every line either arrived, whole and in order, or was counted as dropped.
    assert len(numbers) + dropped == 1000
    assert numbers == sorted(numbers)
    assert all(len(text) == 295 for text in received.decode().splitlines())


def test_lines_waiting_are_written_in_pieces_a_shared_pipe_keeps_whole() -> None:
    # Two workers share stderr: a pipe keeps writes of up to PIPE_BUF bytes from interleaving.
    lines = [f"{n:04d} {'y' * (n % 700)}\n" for n in range(300)] + ["z" * 9000 + "\n"]
    chunks = list(_whole_lines(lines))
    assert b"".join(chunks) == "".join(lines).encode()
    assert all(len(c) <= select.PIPE_BUF for c in chunks[:-1])  # the last: one long line
    assert all(c.endswith(b"\n") for c in chunks)


def test_a_handler_closed_and_let_go_is_freed(pipe: tuple[int, int]) -> None:
    handler = NonBlockingStreamHandler(os.fdopen(pipe[1], "w", closefd=False))
    handler.close()
    handler.flush()  # its writer thread has ended
    gone = weakref.ref(handler)
    del handler
    gc.collect()
    assert gone() is None


def test_a_forked_child_gets_a_writer_of_its_own(pipe: tuple[int, int]) -> None:
    handler = NonBlockingStreamHandler(os.fdopen(pipe[1], "w", closefd=False))
    _made.append(handler)
    child = os.fork()
    if child == 0:  # only the thread that forked runs here: a writer now is the child's own
        writes = [getattr(t, "_target", None) for t in threading.enumerate()]
        os._exit(0 if handler._write_waiting in writes else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0

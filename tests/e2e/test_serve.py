"""`miaopi serve` as an operator runs it: its clients' idle connections, and its log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA_KEY, RULES, serve_process

pytestmark = pytest.mark.slow


def _idle_connection_after(port: int, idle_s: float) -> bytes | None:
    """One keep-alive request, then ``idle_s`` of silence: b"" if the server has closed the
    connection since, None if it is still open."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: miaopi\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += conn.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += conn.recv(65536)
        time.sleep(idle_s)
        conn.settimeout(0.5)
        try:
            return conn.recv(1)
        except TimeoutError:
            return None


def _env(database_url: str, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "MIAOPI_DATABASE_URL": database_url,
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": DATA_KEY,
        **settings,
    }


# Idle past the setting, and past uvicorn's own 5 s while within it.
@pytest.mark.parametrize(("keepalive_s", "idle_s", "closed"), [("1", 2.5, True), ("30", 6, False)])
def test_an_idle_client_connection_is_kept_as_long_as_the_setting_says(
    database_url: str, tmp_path: Path, keepalive_s: str, idle_s: float, closed: bool
) -> None:
    # Behind a load balancer whose idle timeout is 60 s, the service must keep its side open
    # longer: a connection it closed first would take the balancer's next request with it.
    server, port = serve_process(_env(database_url, MIAOPI_HTTP_KEEPALIVE_S=keepalive_s), tmp_path)
    try:
        assert (_idle_connection_after(port, idle_s) == b"") is closed
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_server_whose_log_nobody_reads_goes_on_answering(
    database_url: str, tmp_path: Path
) -> None:
    # A log driver that falls behind stops reading; the pipe holds about 250 request lines.
    server, port = serve_process(_env(database_url), tmp_path, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            statuses = {client.get("/v1/applications").status_code for _ in range(600)}
        assert statuses == {401}  # every one answered, and logged
    finally:
        server.kill()
        server.wait(timeout=20)
    assert server.stderr is not None
    with server.stderr:
        lines = server.stderr.read().decode().splitlines()
    logged = [json.loads(line) for line in lines if '"miaopi.http"' in line]
    assert len(logged) >= 200
    assert all(entry["status"] == 401 for entry in logged)

"""`miaopi serve` as an operator runs it: its clients' idle connections, its log, and the
gauges of workers that were killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA_KEY, RULES, application, serve_process, wait_ready

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


def _workers(server: subprocess.Popen[bytes]) -> list[int]:
    """uvicorn's worker processes under ``miaopi serve --workers N`` (not the resource tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text()
    pids = [int(pid) for pid in children.split()]
    return [p for p in pids if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def test_workers_killed_mid_decision_leave_no_decisions_in_flight_behind(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(
        database_url,
        MIAOPI_MOCK_LATENCY_MS="education=3000",
        MIAOPI_REGISTRY_TIMEOUT_S="10",
        MIAOPI_RATE_LIMIT_PER_MINUTE="0",
    )
    key = subprocess.run(
        [sys.executable, "-m", "miaopi.cli", "clients", "create", "--role", "channel",
         "--name", "killed"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    server, port = serve_process(env, tmp_path, workers=2)
    base = f"http://127.0.0.1:{port}"

    def in_flight() -> float:
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        return sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("miaopi_decisions_in_flight ")
        )

    try:
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(6) as pool:
            posts = [
                pool.submit(client.post, f"{base}/v1/applications", json=application(),
                            headers={"Authorization": f"Bearer {key}"})
                for _ in range(6)
            ]  # fmt: skip
            deadline = time.monotonic() + 10
            while in_flight() < 6 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert in_flight() == 6
            killed = _workers(server)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            for post in posts:  # cut off with their workers
                with pytest.raises(httpx.HTTPError):
                    post.result()
        deadline = time.monotonic() + 60  # uvicorn starts new workers in their place
        while time.monotonic() < deadline:
            replaced = _workers(server)
            if len(replaced) == 2 and not set(replaced) & set(killed):
                break
            time.sleep(0.2)
        wait_ready(port, server)
        assert in_flight() == 0
    finally:
        server.terminate()
        server.wait(timeout=20)

"""The background work of real `miaopi serve` processes: an HR department's CSV through
`miaopi batch submit`, and a webhook whose event committed before the service was killed.

The webhook receiver is a real HTTP server on loopback, in this test's process.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import DATA_KEY, EMPLOYER, RULES, application, graduate, serve_process

pytestmark = pytest.mark.slow


def _env(database_url: str, cohort: Path, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "MIAOPI_DATABASE_URL": database_url,
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_MOCK_DATASET": str(cohort),
        **settings,
    }


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", *args], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _employer_key(env: dict[str, str], cwd: Path) -> str:
    made = _cli(env, cwd, "clients", "create", "--role", "employer", "--name", "HR",
                "--uscc", EMPLOYER)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_hr_submits_a_csv_and_gets_its_results_beside_it(
    database_url: str, cohort: Path, tmp_path: Path
) -> None:
    env = _env(database_url, cohort)
    server, port = serve_process(env, tmp_path)
    try:
        key = _employer_key(env, tmp_path)
        rows = ["item_key,business_type,applicant_name,applicant_id_number,employer_uscc,"
                "diploma_no,commitment_version,commitment_accepted,consent_data_query"]  # fmt: skip
        for n in (60, 61):
            g = graduate(n)
            rows.append(f"{g['name']},graduate,{g['name']},{g['id_number']},{EMPLOYER},"
                        f"{g['diploma_no']},2026-01,TRUE,TRUE")  # fmt: skip
        rows.append("broken,graduate,某人,123,,,2026-01,TRUE,TRUE")
        season = tmp_path / "season.csv"
        season.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
        done = _cli(env, tmp_path, "batch", "submit", str(season), "--url",
                    f"http://127.0.0.1:{port}", "--key", key, "--poll-s", "0.2")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "3 rows: 2 approved, 0 rejected, 0 referred, 1 invalid" in done.stdout
        with (tmp_path / "season.results.csv").open(encoding="utf-8-sig") as results:
            table = list(csv.DictReader(results))
        assert [r["outcome"] for r in table] == ["approved", "approved", "invalid"]
    finally:
        server.terminate()
        server.wait(timeout=20)


class _Receiver(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    arrived: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
        type(self).arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.calls, _Receiver.arrived = [], threading.Event()
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_an_event_committed_before_a_kill_is_delivered_after_the_restart(
    database_url: str, cohort: Path, tmp_path: Path, receiver: str
) -> None:
    # The first process sends no webhooks: it is killed with its event only in the database.
    env = _env(database_url, cohort, MIAOPI_WEBHOOK_INTERVAL_S="0")
    server, port = serve_process(env, tmp_path)
    try:
        key = _employer_key(env, tmp_path)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            hook = api.post("/v1/webhook-endpoints", json={"url": receiver}, headers=auth)
            assert hook.status_code == 201, hook.text
            case = api.post("/v1/applications", json=application(**graduate(70)), headers=auth)
            assert case.json()["status"] == "approved"
    finally:
        server.kill()  # SIGKILL: no shutdown of any kind
        server.wait(timeout=20)
    assert _Receiver.calls == []
    restarted, _ = serve_process(_env(database_url, cohort), tmp_path)
    try:
        assert _Receiver.arrived.wait(timeout=20)
    finally:
        restarted.terminate()
        restarted.wait(timeout=20)
    [(headers, body)] = _Receiver.calls
    event = Webhook(hook.json()["secret"]).verify(body, headers)
    assert (event["type"], event["case_id"]) == ("case.decided", case.json()["case_id"])

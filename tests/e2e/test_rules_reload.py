"""Hot reload: changed rules switch in only when they validate and their cases pass."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, NOW, RULES, application, free_port

pytestmark = pytest.mark.anyio


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


@pytest.fixture
async def reloadable(settings: Settings, rules_copy: Path):  # type: ignore[no-untyped-def]
    container = bootstrap(settings.model_copy(update={"rules_dir": rules_copy}), clock=lambda: NOW)
    _, admin = create_client(container.database.engine, "admin", "ops")
    _, channel = create_client(container.database.engine, "channel", "portal")
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        yield api, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {channel}"}
    await container.aclose()


async def _fingerprint(api: httpx.AsyncClient, auth: dict[str, str]) -> str:
    return (await api.get("/v1/rules/graduate", headers=auth)).json()["fingerprint"]


async def test_a_valid_change_switches_in_and_old_cases_still_replay(reloadable, rules_copy):
    api, admin, channel = reloadable
    old_case = (await api.post("/v1/applications", json=application(), headers=channel)).json()
    before = await _fingerprint(api, admin)
    unchanged = await api.post("/v1/rules:reload", headers=admin)
    assert (unchanged.status_code, unchanged.json()["changed"]) == (200, False)

    _edit(
        rules_copy / "graduate.yaml", "zh: 全日制学习方式", "zh: 全日制学习方式（含非全日制以外）"
    )
    reloaded = await api.post("/v1/rules:reload", headers=admin)
    assert reloaded.status_code == 200
    assert reloaded.json()["changed"] is True
    after = await _fingerprint(api, admin)
    assert after != before
    new_case = (await api.post("/v1/applications", json=application(), headers=channel)).json()
    assert new_case["decision"]["ruleset"]["fingerprint"] == after
    replay = await api.post(f"/v1/applications/{old_case['case_id']}/replay", headers=admin)
    assert replay.json()["identical"] is True


async def test_a_change_its_cases_disprove_is_refused_and_the_old_rules_serve(
    reloadable, rules_copy
):
    api, admin, channel = reloadable
    before = await _fingerprint(api, admin)
    _edit(rules_copy / "graduate.yaml", "{bachelor: 35, master: 40", "{bachelor: 36, master: 40")
    refused = await api.post("/v1/rules:reload", headers=admin)
    assert refused.status_code == 422
    reasons = [e["msg"] for e in refused.json()["errors"]]
    assert any("graduate.yaml: bachelor on the 36th birthday" in r for r in reasons)
    assert await _fingerprint(api, admin) == before
    case = (await api.post("/v1/applications", json=application(), headers=channel)).json()
    assert case["decision"]["ruleset"]["fingerprint"] == before


async def test_a_broken_file_is_refused_with_file_and_path(reloadable, rules_copy):
    api, admin, channel = reloadable
    before = await _fingerprint(api, admin)
    _edit(rules_copy / "common.yaml", "on_fail: refer", "on_fail: later")
    refused = await api.post("/v1/rules:reload", headers=admin)
    assert refused.status_code == 422
    assert "common.yaml: criteria[1].on_fail" in refused.json()["errors"][0]["msg"]
    assert await _fingerprint(api, admin) == before
    assert (await api.post("/v1/rules:reload", headers=channel)).status_code == 403


@pytest.mark.slow
def test_sighup_reloads_a_running_server(tmp_path: Path, rules_copy: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MIAOPI_RULES_DIR": str(rules_copy),
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/sighup.db",
        "MIAOPI_DATA_KEY": DATA_KEY,
    }
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "miaopi.cli",
            "clients",
            "create",
            "--role",
            "admin",
            "--name",
            "ops",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    auth = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "miaopi.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/rules/graduate"
        deadline = time.monotonic() + 30
        before = None
        while time.monotonic() < deadline and before is None:
            try:
                before = httpx.get(url, headers=auth, timeout=2).json()["fingerprint"]
            except httpx.HTTPError:
                time.sleep(0.2)
        assert before is not None, "server did not start"
        _edit(rules_copy / "postdoc.yaml", "zh: 博士后引进\n", "zh: 博士后人才引进\n")
        _edit(rules_copy / "graduate.yaml", "zh: 应届毕业生接收\n", "zh: 应届高校毕业生接收\n")
        server.send_signal(signal.SIGHUP)
        after = before
        while time.monotonic() < deadline and after == before:
            time.sleep(0.2)
            after = httpx.get(url, headers=auth, timeout=5).json()["fingerprint"]
        assert after != before
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_the_working_day_calendar_reloads_with_the_rules(reloadable, rules_copy):
    api, admin, channel = reloadable
    referred = application(id_number="320106200102141117", name="何伟",
                           diploma_no="102841202602000333")  # fmt: skip
    calendar = rules_copy / "calendar" / "working-days.yaml"
    _edit(calendar, "review_due_working_days: 5", "review_due_working_days: 7")
    assert (await api.post("/v1/rules:reload", headers=admin)).status_code == 200
    case = (await api.post("/v1/applications", json=referred, headers=channel)).json()
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=channel)).json()
    assert seen["review"]["due_date"] == "2026-12-01"  # 7 working days from Sunday 22 November

    _edit(calendar, "makeup_working_days: [2026-01-04,", "makeup_working_days: [2026-01-05,")
    refused = await api.post("/v1/rules:reload", headers=admin)
    assert refused.status_code == 422
    assert "is a weekday" in refused.text

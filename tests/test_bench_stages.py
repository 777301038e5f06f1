"""The benchmark's CPU breakdown (bench/stages.py) from py-spy's collapsed stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_script

stages = load_script("bench/stages.py")

LOOP = "run (asyncio/runners.py:118);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
ROUTE = f"{LOOP};app (fastapi/routing.py:154);submit (miaopi/api/routes/applications.py:161)"


def test_each_sample_counts_once_for_its_stage_and_waiting_counts_for_none(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "service.raw"
    raw.write_text(
        "\n".join(
            [
                f"{LOOP};RegistryHttpClient.lookup (miaopi/adapters/http/base.py:120);"
                "ClientSession._request (aiohttp/client.py:558) 30",
                f"{ROUTE};run (miaopi/records/db.py:168);record (miaopi/records/cases.py:120);"
                "Connection.execute (sqlalchemy/engine/base.py:1494) 20",
                f"{ROUTE};_decide (miaopi/api/routes/applications.py:74);"
                "evaluate (miaopi/eligibility/evaluate.py:57) 10",
                f"{ROUTE};Decision.evidence_json (miaopi/decision/service.py:73) 5",
                f"{ROUTE};_replay_if_seen (miaopi/api/routes/applications.py:97);"
                "find_idempotent (miaopi/records/cases.py:213) 4",
                f"{LOOP};H11Protocol.data_received (uvicorn/protocols/http/h11_impl.py:181) 5",
                f"{LOOP};Handle._run (asyncio/events.py:84) 26",
                "run (asyncio/runners.py:118);EpollSelector.select (selectors.py:468) 500",
            ]
        ),
        encoding="utf-8",
    )
    shares = {stage: share for share, stage in stages.stage_shares(raw)}
    assert shares == {
        "registry lookups (httpx, aiohttp)": pytest.approx(0.30),
        "recording the case (one transaction)": pytest.approx(0.20),
        "rules (durable-rules)": pytest.approx(0.10),
        "the route's own work (the case, its JSON)": pytest.approx(0.05),
        "idempotency key: the body's hash, the key looked up": pytest.approx(0.04),
        "HTTP serving, routing, middlewares": pytest.approx(0.05),
        "other": pytest.approx(0.26),
    }
    assert "2.40 ms  registry lookups" in stages.report(raw, cpu_ms=8.0)

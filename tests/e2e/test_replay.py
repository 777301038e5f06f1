"""Replay: every recorded case re-evaluates identically, also after the rule files change."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.records.tables import rulesets
from miaopi.settings import Settings
from tests.conftest import NOW, RULES, application
from tests.e2e.test_applications import PERSONAS
from tests.e2e.test_business_types import BY_NAME, CASES

pytestmark = pytest.mark.anyio


def _body(business_type: str, name: str, claims: dict[str, str]) -> dict[str, object]:
    return {
        "business_type": business_type,
        "applicant": {"name": name, "id_number": BY_NAME[name]},
        "employer": {"uscc": "91440305MA5F1Q2RXK"},
        "claims": claims,
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }


async def test_every_stored_case_replays_identically(api: httpx.AsyncClient, make_key) -> None:
    channel, admin = make_key("channel"), make_key("admin")
    ids = []
    for persona in PERSONAS:
        r = await api.post("/v1/applications", json=application(*persona[:4]), headers=channel)
        ids.append(r.json()["case_id"])
    for business_type, name, claims, *_ in CASES:
        r = await api.post(
            "/v1/applications", json=_body(business_type, name, claims), headers=channel
        )
        ids.append(r.json()["case_id"])
    for case_id in ids:
        replayed = await api.post(f"/v1/applications/{case_id}/replay", headers=admin)
        assert replayed.status_code == 200, replayed.text
        body = replayed.json()
        assert body["identical"] is True, body
        assert body["differences"] == []
    assert len(ids) == len(PERSONAS) + len(CASES)


async def test_replay_uses_the_recorded_rules_after_the_files_change(
    settings: Settings, tmp_path: Path, make_key
) -> None:
    channel, admin = make_key("channel"), make_key("admin")
    first = bootstrap(settings, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=create_app(first))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        old = (await api.post("/v1/applications", json=application(), headers=channel)).json()
    await first.aclose()

    changed = tmp_path / "rules"
    shutil.copytree(RULES, changed)
    path = changed / "graduate.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "{bachelor: 35, master: 40", "{bachelor: 23, master: 40"
        ),
        encoding="utf-8",
    )
    second = bootstrap(settings.model_copy(update={"rules_dir": changed}), clock=lambda: NOW)
    transport = httpx.ASGITransport(app=create_app(second))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        new = (await api.post("/v1/applications", json=application(), headers=channel)).json()
        replayed = (
            await api.post(f"/v1/applications/{old['case_id']}/replay", headers=admin)
        ).json()
    await second.aclose()

    assert (old["status"], new["status"]) == ("approved", "rejected")  # 24 > the new cap of 23
    assert new["decision"]["ruleset"]["fingerprint"] != old["decision"]["ruleset"]["fingerprint"]
    assert replayed["identical"] is True
    assert replayed["replayed_outcome"] == "approved"
    assert replayed["ruleset"] == old["decision"]["ruleset"]


async def test_only_auditors_and_admins_replay_and_tampering_is_refused(
    api: httpx.AsyncClient, container, make_key
) -> None:
    employer, admin = make_key(), make_key("admin")
    case = (await api.post("/v1/applications", json=application(), headers=employer)).json()
    assert (
        await api.post(f"/v1/applications/{case['case_id']}/replay", headers=employer)
    ).status_code == 403
    with container.database.engine.begin() as conn:
        conn.execute(update(rulesets).values(definition={"tampered": True}))
    refused = await api.post(f"/v1/applications/{case['case_id']}/replay", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("ruleset-tampered")

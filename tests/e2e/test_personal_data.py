"""Personal data at rest: sealed in the database file, readable only through the service."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from miaopi.api.schemas import ApplicationIn
from miaopi.bootstrap import Container
from miaopi.eligibility.model import canonical_json
from miaopi.evidence.ports import REGISTRY_NAMES
from miaopi.records.ledger_verify import verify
from miaopi.records.sealing import generate_key
from miaopi.settings import Settings
from miaopi.telemetry.logs import JsonFormatter
from tests.conftest import DATA_KEY, RULES, Clock, application, stored_bytes
from tests.e2e.test_business_types import BY_NAME, CASES
from tests.e2e.test_ledger import FUTIAN

pytestmark = pytest.mark.anyio
Keys = Callable[..., dict[str, str]]
PEOPLE = {
    "420102200203151232": "李明",
    "430104199608202463": "王芳",
    "510104200111023588": "陈晨",
}
DIPLOMAS = {
    "420102200203151232": "104861202602000123",
    "430104199608202463": "105331202603000456",
    "510104200111023588": "106101202602000789",
}


async def decide_revoke_and_bar(
    api: httpx.AsyncClient, make_key: Keys
) -> tuple[dict[str, Any], dict[str, Any]]:
    """PEOPLE approved, one of them revoked by an auditor whose words name two of them, then
    refused when applying again; the revoked case and the refusal, as the admin reads them."""
    employer = make_key("employer", uscc=FUTIAN)
    auditor = make_key("auditor", district="440305")
    admin = make_key("admin")
    for id_number, name in PEOPLE.items():
        body = application(
            uscc=FUTIAN, id_number=id_number, name=name, diploma_no=DIPLOMAS[id_number]
        )
        assert (await api.post("/v1/applications", json=body, headers=employer)).status_code == 201
    # An auditor's words name the applicant; the revocation bars his ID number.
    task = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"][0]
    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={"completeness": "ok", "consistency": "issue", "compliance": "issue",
              "outcome": "revoked", "reason": "李明 420102200203151232 学历证书系伪造",
              "notes": "王芳 430104199608202463 同批核查"},
        headers=auditor,
    )  # fmt: skip
    assert closed.status_code == 200
    barred = (await api.get(f"/v1/applications/{task['case_id']}", headers=admin)).json()
    again = application(
        uscc=FUTIAN, id_number=barred["applicant"]["id_number"], name=barred["applicant"]["name"],
        diploma_no=DIPLOMAS[barred["applicant"]["id_number"]],
    )  # fmt: skip
    second = (await api.post("/v1/applications", json=again, headers=employer)).json()
    return barred, second


async def test_the_database_file_holds_no_id_number_or_name_in_plain_text(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    barred, second = await decide_revoke_and_bar(api, make_key)

    # Through the service everything is as it was: the bar is found by the keyed hash, the
    # admin reads names and ID numbers, and the ledger still verifies.
    assert second["status"] == "rejected"
    bar = next(c for c in second["decision"]["criteria"] if c["id"] == "no_fraud_bar")
    assert (bar["result"], bar["registries"]) == ("fail", ["credit", "revocations"])
    assert barred["applicant"]["name"] in PEOPLE.values()
    assert verify(container.database.engine).intact

    raw = stored_bytes(container.database.engine)
    assert len(raw) > 10_000
    for id_number, name in PEOPLE.items():
        assert id_number.encode() not in raw
        assert name.encode() not in raw
        assert name.encode("utf-16-le") not in raw
    assert FUTIAN.encode() in raw  # employers' codes are not personal data: still searchable


async def test_an_idempotency_key_keeps_no_plain_hash_of_the_body(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    """The body names a person: its plain SHA-256 would confirm a guess of the ID number."""
    body = application(uscc=FUTIAN)
    headers = {**make_key("employer", uscc=FUTIAN), "Idempotency-Key": "hr-1"}
    assert (await api.post("/v1/applications", json=body, headers=headers)).status_code == 201
    again = await api.post("/v1/applications", json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"

    canonical = canonical_json(ApplicationIn.model_validate(body).model_dump(mode="json"))
    raw = stored_bytes(container.database.engine)
    assert b"hr-1" in raw
    assert hashlib.sha256(canonical).hexdigest().encode() not in raw


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", *args],
        env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    env = {
        "MIAOPI_ENVIRONMENT": "production",
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": "",
        **{f"MIAOPI_REGISTRY_{n.upper()}_URL": f"https://{n}.invalid/" for n in REGISTRY_NAMES},
    }
    started = _cli("serve", "--port", "0", env=env, cwd=tmp_path)
    assert started.returncode == 1
    assert "MIAOPI_DATA_KEY is required" in started.stderr
    assert not (tmp_path / "var").exists()


async def test_a_key_that_did_not_seal_the_data_is_refused(
    api: httpx.AsyncClient, make_key: Keys, settings: Settings, tmp_path: Path
) -> None:
    assert (
        await api.post("/v1/applications", json=application(), headers=make_key())
    ).status_code == 201
    env = {"MIAOPI_DATABASE_URL": settings.database_url, "MIAOPI_RULES_DIR": str(RULES)}
    wrong = _cli("ledger", "verify", env={**env, "MIAOPI_DATA_KEY": generate_key()}, cwd=tmp_path)
    assert wrong.returncode == 1
    assert "is not the key this database's personal data was sealed with" in wrong.stderr
    right = _cli("ledger", "verify", env={**env, "MIAOPI_DATA_KEY": settings.data_key or ""},
                 cwd=tmp_path)  # fmt: skip
    assert right.returncode == 0, right.stderr


async def test_a_full_run_logs_no_id_number_and_no_name(
    api: httpx.AsyncClient,
    make_key: Keys,
    container: Container,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Every kind of request, the audit, a re-check and failures, at the most verbose level."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="miaopi")
    employer = make_key("employer", uscc=FUTIAN)
    channel = make_key("channel", uscc=None)
    auditor = make_key("auditor", district="440305")
    admin = make_key("admin")
    used: set[str] = set()

    bodies = [application(uscc=FUTIAN, id_number=i, name=n, diploma_no=DIPLOMAS[i])
              for i, n in PEOPLE.items()]  # fmt: skip
    for business_type, name, claims, *_ in CASES:
        body = application(uscc=FUTIAN, id_number=BY_NAME[name], name=name, diploma_no=None)
        bodies.append({**body, "business_type": business_type, "claims": claims})
    case_ids = []
    for n, body in enumerate(bodies):
        used |= {body["applicant"]["id_number"], body["applicant"]["name"]}  # type: ignore[index]
        made = await api.post("/v1/applications", json=body,
                              headers={**employer, "Idempotency-Key": f"k{n}"})  # fmt: skip
        assert made.status_code == 201, made.text
        case_ids.append(made.json()["case_id"])
        again = await api.post("/v1/applications", json=body,
                               headers={**employer, "Idempotency-Key": f"k{n}"})  # fmt: skip
        assert again.status_code == 200
        dry = await api.post("/v1/evaluations", json=body, headers=channel)
        assert dry.status_code == 200
    # Refusals that quote what was sent: a wrong check digit, a name too long, a foreign employer.
    bad_id = application(id_number="420102200203151233")
    long_name = application(name="李" * 300)
    foreign = application(uscc="91440305MA5G2K7N95")
    used |= {"420102200203151233"}
    for body, status in ((bad_id, 422), (long_name, 422), (foreign, 403)):
        assert (
            await api.post("/v1/applications", json=body, headers=employer)
        ).status_code == status
    for case_id in case_ids:
        assert (await api.get(f"/v1/applications/{case_id}", headers=admin)).status_code == 200
        replay = await api.post(f"/v1/applications/{case_id}/replay", headers=admin)
        assert replay.status_code == 200
    assert (await api.get("/v1/applications", headers=employer)).status_code == 200
    task = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"][0]
    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={"completeness": "ok", "consistency": "issue", "compliance": "issue",
              "outcome": "revoked", "reason": "李明 420102200203151232 学历证书系伪造"},
        headers=auditor,
    )  # fmt: skip
    assert closed.status_code == 200
    clock.advance(days=40)
    report = await container.rechecker.run()
    assert report.summary()

    out, err = capfd.readouterr()
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert len([r for r in caplog.records if r.name == "miaopi.http"]) > 3 * len(bodies)
    for secret in used:
        assert secret not in caplog.text, secret
        assert secret not in formatted, secret
        assert secret not in out + err, secret


def test_production_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    env = {
        "MIAOPI_ENVIRONMENT": "production",
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_SIGNING_KEY": "",
        **{f"MIAOPI_REGISTRY_{n.upper()}_URL": f"https://{n}.invalid/" for n in REGISTRY_NAMES},
    }
    started = _cli("serve", "--port", "0", env=env, cwd=tmp_path)
    assert started.returncode == 1
    assert "MIAOPI_SIGNING_KEY is required" in started.stderr
    assert not (tmp_path / "var").exists()  # no key made beside the data

"""Post-hoc supervision through the API: tasks, findings, revocation, published draws."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

from miaopi.bootstrap import Container
from miaopi.supervision.queue import assign_waiting
from miaopi.supervision.tasks import DRAW_BATCH
from tests.conftest import NOW, REPO, Clock, application, graduate

pytestmark = pytest.mark.anyio

FUTIAN = "91440304MA5H3T8P2L"  # risk class C (every approval is drawn), district 440304
NANSHAN_A = "91440305MA5G2K7N95"  # risk class A, district 440305
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}
WANG_FANG = {"id_number": "430104199608202463", "name": "王芳", "diploma_no": "105331202603000456"}

Keys = Callable[..., dict[str, str]]


async def approve(api: httpx.AsyncClient, auth: dict[str, str], uscc: str, **who: str) -> dict:
    response = await api.post(
        "/v1/applications", json=application(uscc=uscc, **(who or LI_MING)), headers=auth
    )
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["status"] == "approved", case["decision"]
    return case


async def tasks_of(api: httpx.AsyncClient, auth: dict[str, str], **params: str) -> list[dict]:
    response = await api.get("/v1/audit/tasks", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def verify_draw(published: dict, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The outsider's script, run on the publication as it would be saved from the API."""
    script = str(REPO / "scripts" / "verify_draw.py")
    return await anyio.run_process(
        [sys.executable, script, "-", *args], input=json.dumps(published).encode(), check=False
    )


FINDINGS = {"completeness": "ok", "consistency": "issue", "compliance": "issue", "notes": "n"}


async def test_an_auditor_revokes_a_case_and_the_applicant_is_barred(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    nanshan_auditor = make_key("auditor", district="440305")
    futian_auditor = make_key("auditor", district="440304")
    employer = make_key("employer", uscc=FUTIAN)
    case = await approve(api, employer, FUTIAN)

    # Recusal: the Futian employer's task goes to the Nanshan auditor, never the Futian one.
    assert await tasks_of(api, futian_auditor) == []
    [task] = await tasks_of(api, nanshan_auditor)
    assert task["case_id"] == case["case_id"]
    assert task["kind"] == "spot_check"
    assert task["status"] == "open"
    assert task["due_date"] == "2027-02-20"
    assert task["overdue"] is False
    assert task["period"] == "2026-11"
    assert task["auditor"] == {"name": "auditor test", "district": "440305"}

    # The assigned auditor sees the whole case unmasked, with the registries' answers.
    detail = (await api.get(f"/v1/audit/tasks/{task['task_id']}", headers=nanshan_auditor)).json()
    assert detail["case"]["applicant"] == {"name": "李明", "id_number": LI_MING["id_number"]}
    education = next(e for e in detail["case"]["evidence"] if e["registry"] == "education")
    assert education["record"]["diploma_no"] == LI_MING["diploma_no"]
    assert [e["event"] for e in detail["case"]["history"]] == ["decided"]
    read = await api.get(f"/v1/applications/{case['case_id']}", headers=nanshan_auditor)
    assert read.json()["applicant"]["id_number"] == LI_MING["id_number"]
    # ...which the other auditor cannot reach at all.
    for path in (f"/v1/audit/tasks/{task['task_id']}", f"/v1/applications/{case['case_id']}"):
        assert (await api.get(path, headers=futian_auditor)).status_code == 404

    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={**FINDINGS, "outcome": "revoked", "reason": "diploma forged"},
        headers=nanshan_auditor,
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed"
    assert body["outcome"] == "revoked"
    assert body["findings"] == FINDINGS
    assert body["case"]["status"] == "revoked"
    assert [e["event"] for e in body["case"]["history"]] == ["decided", "revoked", "audit_closed"]
    # The decision itself is kept as it was made.
    assert body["case"]["decision"] == case["decision"]
    assert body["case"]["approval_number"] == case["approval_number"]

    again = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={**FINDINGS, "outcome": "confirmed"},
        headers=nanshan_auditor,
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    # The employer sees the revocation and why.
    mine = (await api.get(f"/v1/applications/{case['case_id']}", headers=employer)).json()
    assert mine["status"] == "revoked"
    assert mine["revocation"]["reason"] == "diploma forged"
    listed = await api.get("/v1/applications", params={"status": "revoked"}, headers=employer)
    assert [c["case_id"] for c in listed.json()["items"]] == [case["case_id"]]

    # The applicant's next application is rejected on the fraud bar, from this city's register.
    later = await api.post(
        "/v1/applications", json=application(uscc=FUTIAN, **LI_MING), headers=employer
    )
    decision = later.json()["decision"]
    assert later.json()["status"] == "rejected"
    bar = next(c for c in decision["criteria"] if c["id"] == "no_fraud_bar")
    assert bar["result"] == "fail"
    assert bar["facts"]["latest_fraud_bar_on"] == "2026-11-22"
    assert bar["registries"] == ["credit", "revocations"]

    # The same number typed in full-width digits, as Chinese input methods may, is the same
    # person: still barred, and asked about and recorded in its standard form.
    wide = LI_MING["id_number"].translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    assert wide != LI_MING["id_number"]
    typed = await api.post(
        "/v1/applications",
        json=application(uscc=FUTIAN, **{**LI_MING, "id_number": wide}),
        headers=employer,
    )
    bar = next(c for c in typed.json()["decision"]["criteria"] if c["id"] == "no_fraud_bar")
    assert (typed.json()["status"], bar["result"]) == ("rejected", "fail")
    seen = await api.get(f"/v1/applications/{typed.json()['case_id']}", headers=make_key("admin"))
    assert seen.json()["applicant"]["id_number"] == LI_MING["id_number"]


async def test_findings_are_validated_and_only_the_assigned_auditor_closes(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    auditor = make_key("auditor", district="440305")
    other = make_key("auditor", district="440306")
    admin = make_key("admin", uscc=None)
    employer = make_key("employer", uscc=FUTIAN)
    await approve(api, employer, FUTIAN)
    tasks = await tasks_of(api, auditor) + await tasks_of(api, other)
    [task] = tasks
    mine = task["auditor"]["district"] == "440305"
    owner, stranger = (auditor, other) if mine else (other, auditor)
    url = f"/v1/audit/tasks/{task['task_id']}/findings"
    confirmed = {**FINDINGS, "outcome": "confirmed"}

    no_reason = await api.post(url, json={**FINDINGS, "outcome": "revoked"}, headers=owner)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["loc"] == ["body", "reason"]
    bad = await api.post(url, json={**FINDINGS, "outcome": "maybe", "x": 1}, headers=owner)
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} >= {("body", "outcome"), ("body", "x")}
    assert (await api.post(url, json=confirmed, headers=stranger)).status_code == 404
    assert (await api.post(url, json=confirmed, headers=admin)).status_code == 403
    assert (await api.post(url, json=confirmed, headers=employer)).status_code == 403
    assert (await api.get("/v1/audit/tasks", headers=employer)).status_code == 403

    done = await api.post(url, json=confirmed, headers=owner)
    assert done.status_code == 200
    assert done.json()["case"]["status"] == "approved"
    assert await tasks_of(api, owner, status="open") == []
    assert [t["task_id"] for t in await tasks_of(api, owner, status="closed")] == [task["task_id"]]


async def test_without_an_eligible_auditor_the_task_waits_for_admins(
    api: httpx.AsyncClient, make_key: Keys, container: Container, clock: Clock
) -> None:
    futian_auditor = make_key("auditor", district="440304")
    admin = make_key("admin", uscc=None)
    await approve(api, make_key("employer", uscc=FUTIAN), FUTIAN)

    assert await tasks_of(api, futian_auditor) == []  # recused: same district
    [waiting] = await tasks_of(api, admin, status="unassigned")
    assert waiting["auditor"] is None

    # An auditor from another district arrives (``miaopi clients create`` does this step).
    later = make_key("auditor", district="440306")
    assert assign_waiting(container.database.engine, clock()) == 1
    [task] = await tasks_of(api, later)
    assert task["task_id"] == waiting["task_id"]
    assert task["status"] == "open"

    # Overdue once the due date has passed without findings.
    clock.advance(days=91)
    assert [t["task_id"] for t in await tasks_of(api, later, overdue="true")] == [task["task_id"]]
    assert (await tasks_of(api, later))[0]["overdue"] is True


async def test_assignment_always_crosses_districts(api: httpx.AsyncClient, make_key: Keys) -> None:
    auditors = {d: make_key("auditor", district=d) for d in ("440304", "440305", "440306")}
    for k, uscc in enumerate((FUTIAN, "91440305MA5F1Q2RXK")):
        employer = make_key("employer", uscc=uscc)
        for i in range(12):
            await approve(api, employer, uscc, **graduate(12 * k + i))
    seen = 0
    for district, auth in auditors.items():
        for task in await tasks_of(api, auth, limit="100"):
            seen += 1
            region = "440304" if task["case"]["employer"]["uscc"] == FUTIAN else "440305"
            assert district != region
    assert seen >= 12  # every Futian approval (class C) at least


async def test_the_published_seed_reproduces_last_months_selection(
    api: httpx.AsyncClient, make_key: Keys, clock: Clock
) -> None:
    auditor = make_key("auditor", district="440306")
    clock.now = datetime(2026, 10, 20, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    approved = []
    for k, uscc in enumerate((NANSHAN_A, "91440305MA5F1Q2RXK", FUTIAN)):
        employer = make_key("employer", uscc=uscc)
        for i in range(16):  # a person is approved once a year (policy §5)
            who = graduate(16 * k + i)
            approved.append((await approve(api, employer, uscc, **who))["case_id"])

    during = (await api.get("/v1/audit/periods/2026-10", headers=auditor)).json()
    assert during["ended"] is False
    assert during["seed"] is None
    assert len(during["seed_sha256"]) == 64
    assert sorted(d["case_id"] for d in during["draws"]) == sorted(approved)
    # While the month runs the script has no seed to check: it says so and shows the
    # commitment to keep, instead of "0 selected, DOES NOT MATCH".
    running = await verify_draw(during)
    assert running.returncode == 0, running.stderr
    assert "not published yet" in running.stderr.decode()
    assert during["seed_sha256"] in running.stderr.decode()
    assert running.stdout == b""

    clock.now = NOW  # November: October has ended
    published = (await api.get("/v1/audit/periods/2026-10", headers=auditor)).json()
    assert published["ended"] is True
    assert published["seed_sha256"] == during["seed_sha256"]
    assert {(r["risk_class"], r["rate"]) for r in published["rates"]} == {
        ("A", "0.025"),
        ("B", "0.05"),
        ("C", "1"),
    }
    futian = {d["case_id"] for d in published["draws"] if d["risk_class"] == "C"}
    assert futian <= set(published["selected"])  # class C: every approval is checked

    verifier = await verify_draw(published, "--commitment", during["seed_sha256"])
    assert verifier.returncode == 0, verifier.stderr
    assert sorted(verifier.stdout.decode().split()) == sorted(published["selected"])
    # A seed swapped after the month, with a commitment to match, is caught by the one kept.
    other = await verify_draw(published, "--commitment", "0" * 64)
    assert other.returncode == 1
    assert "commitment kept from during the month" in other.stderr.decode()

    # A tampered publication (one flag flipped) is caught by the same script.
    draw = next(d for d in published["draws"] if d["risk_class"] == "A")
    draw["selected"] = not draw["selected"]
    caught = await verify_draw(published)
    assert caught.returncode == 1
    assert draw["case_id"] in caught.stderr.decode()

    # The spot-check tasks of the period match the selection.
    admin = make_key("admin", uscc=None)
    tasks = await tasks_of(api, admin, period="2026-10", kind="spot_check", limit="100")
    assert sorted(t["case_id"] for t in tasks) == sorted(published["selected"])


async def test_a_period_longer_than_a_batch_reads_whole(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    """The period and its samples are read and written out a batch of rows at a time."""
    approved = []
    for n in range(DRAW_BATCH + 3):
        if n % 50 == 0:  # a client of its own per fifty: within the rate limit's burst
            employer = make_key("employer", uscc=FUTIAN)  # class C: every approval is drawn
        approved.append((await approve(api, employer, FUTIAN, **graduate(n)))["case_id"])
    admin = make_key("admin", uscc=None)

    answer = await api.get("/v1/audit/periods/2026-11", headers=admin)
    assert answer.headers["content-type"] == "application/json"
    period = answer.json()
    assert [d["case_id"] for d in period["draws"]] == sorted(approved)
    assert period["approvals"] == len(approved)
    assert period["selected"] == sorted(approved)
    assert period["rates"] == [{"risk_class": "C", "rate": "1"}]
    assert len(period["seed_sha256"]) == 64

    samples = await api.get("/v1/audit/periods/2026-11/samples.csv", headers=admin)
    rows = list(csv.DictReader(io.StringIO(samples.content.decode("utf-8-sig"))))
    assert [r["case_id"] for r in rows] == approved  # oldest first
    assert len({r["task_id"] for r in rows}) == len(approved)


async def test_periods_are_validated_and_closed_to_employers(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    auditor = make_key("auditor", district="440306")
    bad = await api.get("/v1/audit/periods/2026-13", headers=auditor)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["path", "period"]
    empty = (await api.get("/v1/audit/periods/2026-12", headers=auditor)).json()
    assert empty == {
        "period": "2026-12",
        "ended": False,
        "seed": None,
        "seed_sha256": None,
        "rates": [],
        "approvals": 0,
        "selected": [],
        "draws": [],
    }
    assert (await api.get("/v1/audit/periods/2026-10", headers=make_key())).status_code == 403


async def test_samples_export_as_csv_for_spreadsheets(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    auditor = make_key("auditor", district="440305")
    employer = make_key("employer", uscc=FUTIAN)
    await approve(api, employer, FUTIAN)
    await approve(api, employer, FUTIAN, **WANG_FANG)
    [first, *_] = await tasks_of(api, auditor)
    await api.post(
        f"/v1/audit/tasks/{first['task_id']}/findings",
        json={**FINDINGS, "outcome": "revoked", "reason": '=HYPERLINK("http://x")'},
        headers=auditor,
    )

    response = await api.get("/v1/audit/periods/2026-11/samples.csv", headers=auditor)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())  # Excel opens UTF-8 with a BOM
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert len(rows) == 2
    assert {r["applicant_name"] for r in rows} == {"李明", "王芳"}
    revoked = next(r for r in rows if r["task_id"] == first["task_id"])
    assert revoked["outcome"] == "revoked"
    assert revoked["reason"].startswith("'=")  # never a live formula in a spreadsheet

    other = make_key("auditor", district="440306")
    theirs = await api.get("/v1/audit/periods/2026-11/samples.csv", headers=other)
    assert list(csv.DictReader(io.StringIO(theirs.text.lstrip("\ufeff")))) == []

"""After the approval (policy §11): the police station registers the household against the
approval number and the identity card, the finance office records the subsidy paid; each is a
stage of the case, once, in the ledger and the event feed; a registration ends the live
approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from miaopi.bootstrap import Container
from miaopi.records.certificate_tables import case_stages
from miaopi.records.ledger_verify import verify
from tests.conftest import application, graduate

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]


async def _approved(api: httpx.AsyncClient, hr: dict[str, str], n: int) -> dict[str, Any]:
    answer = await api.post("/v1/applications", json=application(**graduate(n)), headers=hr)
    assert answer.json()["status"] == "approved", answer.text
    return answer.json()


def _registration(case: dict[str, Any], n: int, **changes: str) -> dict[str, str]:
    return {"approval_number": case["approval_number"], "id_number": graduate(n)["id_number"],
            "registered_on": "2026-11-23", "police_station": "福田派出所", **changes}  # fmt: skip


async def test_the_household_is_registered_once_and_ends_the_live_approval(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    case = await _approved(api, hr, 80)
    registrar = make_key("registrar", uscc=None)
    other = graduate(81)["id_number"]
    wrong = await api.post("/v1/registrations", json=_registration(case, 80, id_number=other),
                           headers=registrar)  # fmt: skip
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["loc"] == ["body", "id_number"]
    done = await api.post("/v1/registrations", json=_registration(case, 80), headers=registrar)
    assert done.status_code == 201, done.text
    again = await api.post("/v1/registrations", json=_registration(case, 80), headers=registrar)
    assert again.status_code == 409
    unknown = _registration(case, 80, approval_number="4403-2026-999999")
    assert (await api.post("/v1/registrations", json=unknown, headers=registrar)).status_code == 404
    assert (await api.post("/v1/registrations", json=_registration(case, 80),
                           headers=hr)).status_code == 403  # fmt: skip

    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=hr)).json()
    assert [s["stage"] for s in seen["stages"]] == ["decided", "household_registered"]
    feed = (await api.get("/v1/events", headers=hr)).json()["items"]
    assert [e["data"].get("stage") for e in feed if e["type"] == "case.stage_reached"] == [
        "household_registered"
    ]
    # Policy §5: the approval is no longer live, so a new application is not referred for it.
    anew = await api.post("/v1/applications", json=application(**graduate(80)), headers=hr)
    assert anew.json()["status"] == "approved"

    assert verify(container.database.engine).intact
    with container.database.engine.begin() as conn:
        conn.execute(update(case_stages).values(detail={"police_station": "别处"}))
    assert not verify(container.database.engine).intact


async def test_an_entitlement_paid_is_a_stage_recorded_once(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    hr = make_key()
    case = await _approved(api, hr, 82)
    [granted] = case["decision"]["entitlements"]
    finance = make_key("finance", uscc=None)
    url = f"/v1/applications/{case['case_id']}/entitlements/{granted['id']}/payments"
    payment = {"amount_cny": granted["amount_cny"], "paid_on": "2026-11-30",
               "reference": "PAY-2026-0001"}  # fmt: skip
    done = await api.post(url, json=payment, headers=finance)
    assert done.status_code == 201, done.text
    assert (await api.post(url, json=payment, headers=finance)).status_code == 409
    nothing = f"/v1/applications/{case['case_id']}/entitlements/free_lunch/payments"
    assert (await api.post(nothing, json=payment, headers=finance)).status_code == 404
    assert (await api.post(url, json={**payment, "amount_cny": "15000"},
                           headers=finance)).status_code == 422  # fmt: skip
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=hr)).json()
    paid = [s for s in seen["stages"] if s["stage"] == "entitlement_paid"]
    assert [(s["entitlement_id"], s["on"]) for s in paid] == [(granted["id"], "2026-11-30")]


async def test_a_revoked_approval_takes_no_registration(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    futian = "91440304MA5H3T8P2L"  # risk class C: drawn for a spot check
    auditor = make_key("auditor", district="440305")
    hr = make_key("employer", uscc=futian)
    answer = await api.post("/v1/applications", json=application(uscc=futian, **graduate(83)),
                            headers=hr)  # fmt: skip
    case = answer.json()
    [task] = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"]
    findings = {"completeness": "ok", "consistency": "issue", "compliance": "issue",
                "notes": "n", "outcome": "revoked", "reason": "forged"}  # fmt: skip
    closed = await api.post(f"/v1/audit/tasks/{task['task_id']}/findings", json=findings,
                            headers=auditor)  # fmt: skip
    assert closed.status_code == 200, closed.text
    registrar = make_key("registrar", uscc=None)
    refused = await api.post("/v1/registrations", json=_registration(case, 83), headers=registrar)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/revoked")

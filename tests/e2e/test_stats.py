"""The authority's figures (policy §12): counted from the recorded cases, so they agree across
instances and survive a restart; by business type, district and employer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.settings import Settings
from tests.conftest import Clock, application

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
FUTIAN = "91440304MA5H3T8P2L"  # district 440304, risk class C: every approval is spot-checked
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}
CHEN_CHEN = {"id_number": "510104200111023588", "name": "陈晨", "diploma_no": "106101202602000789"}
HE_WEI = {"id_number": "320106200102141117", "name": "何伟", "diploma_no": "102841202602000333"}


async def _world(api: httpx.AsyncClient, make_key: Keys) -> dict[str, Any]:
    hr, futian = make_key("employer"), make_key("employer", uscc=FUTIAN)
    make_key("auditor", district="440305")
    approved = (await api.post("/v1/applications", json=application(uscc=FUTIAN, **LI_MING),
                               headers=futian)).json()  # fmt: skip
    rejected = (await api.post("/v1/applications", json=application(**CHEN_CHEN),
                               headers=hr)).json()  # fmt: skip
    referred = (await api.post("/v1/applications", json=application(uscc=FUTIAN, **HE_WEI),
                               headers=futian)).json()  # fmt: skip
    assert [approved["status"], rejected["status"], referred["status"]] == [
        "approved", "rejected", "referred"]  # fmt: skip
    token = (await api.get(f"/v1/applications/{approved['case_id']}/certificate",
                           headers=futian)).json()["token"]  # fmt: skip
    checked = await api.post("/v1/certificates/verify", json={"token": token})
    assert checked.json()["status"] == "valid"
    registered = await api.post("/v1/registrations", headers=make_key("registrar"), json={
        "approval_number": approved["approval_number"], "id_number": LI_MING["id_number"],
        "registered_on": "2026-11-22", "police_station": "福田派出所"})  # fmt: skip
    assert registered.status_code == 201, registered.text
    return {"approved": approved, "referred": referred}


async def test_the_figures_count_what_was_recorded_and_survive_a_restart(
    api: httpx.AsyncClient, make_key: Keys, settings: Settings, clock: Clock
) -> None:
    await _world(api, make_key)
    admin = make_key("admin")
    answer = await api.get("/v1/stats?from=2026-11-01&to=2026-11-30", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    totals = body["totals"]
    assert totals["applications"] == 3
    assert totals["first_decision"] == {"approved": 1, "rejected": 1, "referred": 1}
    assert totals["approved_without_a_person"] == 1
    assert totals["instant_approval_rate"] == round(1 / 3, 4)
    assert totals["reviews"]["opened"] == totals["reviews"]["open"] == 1
    assert totals["audits"]["spot_check"]["drawn"] == 1
    assert totals["certificates_verified"] == 1
    assert totals["households_registered"] == 1
    assert totals["time_to_decision_s"]["p50"] >= 0
    assert [r["criterion"] for r in body["referral_reasons"]] == ["no_criminal_record"]
    assert body["per_day"] == [{"day": "2026-11-22", "applications": 3, "approved": 1,
                                "rejected": 1, "referred": 1}]  # fmt: skip
    by_district = (await api.get("/v1/stats?from=2026-11-01&to=2026-11-30&group_by=district",
                                 headers=admin)).json()  # fmt: skip
    assert {g["key"]: g["applications"] for g in by_district["groups"]} == {
        "440304": 2, "440305": 1}  # fmt: skip
    assert by_district["totals"]["applications"] == 3
    # Another instance on the same database, started afresh, says the same.
    other = bootstrap(settings, clock=clock)
    try:
        other.database.open_on_this_loop()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(other)),
                                     base_url="http://miaopi.test") as second:  # fmt: skip
            again = await second.get("/v1/stats?from=2026-11-01&to=2026-11-30", headers=admin)
        assert again.json() == body
    finally:
        await other.aclose()


async def test_a_period_outside_the_cases_counts_nothing_and_bad_periods_are_refused(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    await _world(api, make_key)
    admin = make_key("admin")
    empty = (await api.get("/v1/stats?from=2026-10-01&to=2026-10-31", headers=admin)).json()
    assert empty["totals"]["applications"] == 0
    assert empty["totals"]["instant_approval_rate"] is None
    assert empty["per_day"] == []
    for query, field in (("from=2026-11-30&to=2026-11-01", "to"),
                         ("from=2024-01-01&to=2026-11-30", "from"),
                         ("group_by=person", "group_by"), ("from=20261101", "from")):  # fmt: skip
        refused = await api.get(f"/v1/stats?{query}", headers=admin)
        assert refused.status_code == 422, query
        assert refused.json()["errors"][0]["loc"][-1] == field
    assert (await api.get("/v1/stats", headers=make_key("employer"))).status_code == 403

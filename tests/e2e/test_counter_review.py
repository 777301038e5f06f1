"""The counter review over HTTP (policy §9): a referred case waits at the counter with its due
date in working days; an officer takes it, resolves what the machine could not, and decides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from tests.conftest import Clock, application

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 何伟: a criminal record, so no_criminal_record fails in refer mode and the case is referred.
HE_WEI = {"id_number": "320106200102141117", "name": "何伟", "diploma_no": "102841202602000333"}
RESOLVED = {"criterion": "no_criminal_record", "result": "pass", "basis": "note",
            "note": "a traffic offence, spent; its certificate seen at the counter"}  # fmt: skip


async def _referred(api: httpx.AsyncClient, make_key: Keys) -> dict[str, Any]:
    answer = await api.post("/v1/applications", json=application(**HE_WEI), headers=make_key())
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["status"] == "referred"
    return case


async def _review_of(api: httpx.AsyncClient, admin: dict[str, str], case_id: str) -> dict[str, Any]:
    queue = (await api.get("/v1/reviews", headers=admin)).json()["items"]
    [review] = [r for r in queue if r["case_id"] == case_id]
    return review


async def test_a_referred_case_waits_at_the_counter_with_its_due_date(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    case = await _referred(api, make_key)
    officer = make_key("officer", district="440304")
    review = await _review_of(api, officer, case["case_id"])
    # Referred on Sunday 22 November 2026: five working days on is Friday the 27th.
    assert review["status"] == "waiting"
    assert review["referred_on"] == "2026-11-22"
    assert review["due_date"] == "2026-11-27"
    assert review["overdue"] is False
    # The submitter sees it on the case.
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=make_key())).json()
    assert seen["status"] == "referred"
    assert seen["review"]["status"] == "waiting"
    assert seen["review"]["due_date"] == "2026-11-27"
    assert [d["by"] for d in seen["decisions"]] == ["miaopi"]


async def test_an_officer_takes_the_case_and_approves_it_and_it_is_spot_checked(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    case = await _referred(api, make_key)
    officer = make_key("officer", district="440304")
    other = make_key("officer", district="440306")
    review = await _review_of(api, officer, case["case_id"])
    url = f"/v1/reviews/{review['review_id']}"

    taken = await api.post(f"{url}/claim", headers=officer)
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "in_review"
    assert (await api.post(f"{url}/claim", headers=other)).status_code == 409
    assert (await api.post(f"{url}/claim", headers=officer)).status_code == 200  # no change

    decided = await api.post(
        f"{url}/decision",
        json={"outcome": "approved", "reason": "record resolved", "resolutions": [RESOLVED]},
        headers=officer,
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "closed"
    assert body["outcome"] == "approved"
    assert body["approval_number"].startswith("4403-2026-")
    assert body["entitlements"] == [{"id": "living_subsidy", "amount_cny": 15000}]

    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=make_key())).json()
    assert seen["status"] == "approved"
    assert seen["approval_number"] == body["approval_number"]
    assert [d["by"] for d in seen["decisions"]] == ["miaopi", "counter review"]
    assert seen["decision"]["outcome"] == "referred"  # the first decision is never rewritten
    assert seen["review"]["resolutions"][0]["note"] is None  # the officer's notes stay inside

    # Every manual approval is drawn for a spot check, whatever the employer's risk class.
    admin = make_key("admin", uscc=None)
    period = (await api.get("/v1/audit/periods/2026-11", headers=admin)).json()
    [draw] = [d for d in period["draws"] if d["case_id"] == case["case_id"]]
    assert (draw["rate"], draw["selected"]) == ("1", True)
    tasks = (await api.get("/v1/audit/tasks", headers=admin)).json()["items"]
    assert [t["kind"] for t in tasks if t["case_id"] == case["case_id"]] == ["spot_check"]

    verdict = verify(container.database.engine)
    assert verdict.intact, verdict
    assert verdict.entries == 2  # the referral's decision, the officer's decision

    # Replay shows the automatic evaluation and, after it, the officer's resolutions.
    replayed = await api.post(f"/v1/applications/{case['case_id']}/replay", headers=admin)
    body = replayed.json()
    assert (body["recorded_outcome"], body["identical"]) == ("referred", True)
    [manual] = body["later_decisions"]
    assert (manual["by"], manual["recorded_outcome"]) == ("counter review", "approved")
    assert manual["resolutions"] == [{**RESOLVED, "document_id": None}]

    again = await api.post(
        f"{url}/decision",
        json={"outcome": "approved", "resolutions": [RESOLVED]},
        headers=officer,
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        ({"outcome": "approved", "resolutions": []}, ["body", "resolutions"]),
        ({"outcome": "approved", "resolutions": [{**RESOLVED, "result": "fail"}]},
         ["body", "outcome"]),
        ({"outcome": "rejected", "resolutions": [{**RESOLVED, "result": "fail"}]},
         ["body", "reason"]),
        ({"outcome": "approved", "resolutions": [RESOLVED, {**RESOLVED, "criterion":
          "identity_verified"}]}, ["body", "resolutions", 1, "criterion"]),
        ({"outcome": "approved", "resolutions": [RESOLVED, RESOLVED]},
         ["body", "resolutions", 1, "criterion"]),
        ({"outcome": "approved", "resolutions": [{**RESOLVED, "basis": "document",
          "document_id": "0" * 32}]}, ["body", "resolutions", 0, "document_id"]),
        ({"outcome": "approved", "resolutions": [{**RESOLVED, "note": None}]},
         ["body", "resolutions", 0, "note"]),
    ],
)  # fmt: skip
async def test_a_decision_that_does_not_resolve_what_it_must_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, make_key: Keys, container: Container, decision: dict[str, Any],
    field: list[Any],
) -> None:  # fmt: skip
    case = await _referred(api, make_key)
    officer = make_key("officer", district="440304")
    review = await _review_of(api, officer, case["case_id"])
    url = f"/v1/reviews/{review['review_id']}"
    await api.post(f"{url}/claim", headers=officer)
    refused = await api.post(f"{url}/decision", json=decision, headers=officer)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["loc"] == field
    assert (await api.get(url, headers=officer)).json()["status"] == "in_review"
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=make_key())).json()
    assert seen["status"] == "referred"
    assert verify(container.database.engine).entries == 1


async def test_only_the_officer_who_took_the_review_decides_it(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    case = await _referred(api, make_key)
    officer = make_key("officer", district="440304")
    other = make_key("officer", district="440306")
    review = await _review_of(api, officer, case["case_id"])
    url = f"/v1/reviews/{review['review_id']}"
    body = {"outcome": "approved", "resolutions": [RESOLVED]}
    assert (await api.post(f"{url}/decision", json=body, headers=officer)).status_code == 403
    await api.post(f"{url}/claim", headers=officer)
    refused = await api.post(f"{url}/decision", json=body, headers=other)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get(url, headers=officer)).json()["status"] == "in_review"


async def test_an_officer_of_the_employers_district_is_recused_while_another_can_take_it(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    case = await _referred(api, make_key)  # the employer is in Nanshan, 440305
    nanshan = make_key("officer", district="440305")
    review = await _review_of(api, nanshan, case["case_id"])
    url = f"/v1/reviews/{review['review_id']}/claim"
    assert (await api.post(url, headers=nanshan)).status_code == 200  # the only officer
    case = await _referred(api, make_key)
    futian = make_key("officer", district="440304")
    review = await _review_of(api, futian, case["case_id"])
    url = f"/v1/reviews/{review['review_id']}/claim"
    recused = await api.post(url, headers=nanshan)
    assert recused.status_code == 409
    assert recused.json()["type"].endswith("/recused")
    assert (await api.post(url, headers=futian)).status_code == 200


async def test_overdue_counts_working_days_across_a_holiday_and_a_make_up_day(
    api: httpx.AsyncClient, make_key: Keys, clock: Clock
) -> None:
    # The day before 中秋 (25-27 September 2026) and National Day (1-7 October).
    clock.now = datetime(2026, 9, 24, 10, 0, tzinfo=SHANGHAI)
    case = await _referred(api, make_key)
    officer = make_key("officer", district="440304")
    review = await _review_of(api, officer, case["case_id"])
    assert review["due_date"] == "2026-10-09"  # 28, 29, 30 September, 8 and 9 October
    clock.now = datetime(2026, 10, 9, 17, 0, tzinfo=SHANGHAI)
    assert (await _review_of(api, officer, case["case_id"]))["overdue"] is False
    clock.now = datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI)  # a Saturday worked (调休)
    assert (await _review_of(api, officer, case["case_id"]))["overdue"] is True
    late = (await api.get("/v1/reviews", params={"overdue": "true"}, headers=officer)).json()
    assert [r["case_id"] for r in late["items"]] == [case["case_id"]]
    on_time = (await api.get("/v1/reviews", params={"overdue": "false"}, headers=officer)).json()
    assert on_time["items"] == []

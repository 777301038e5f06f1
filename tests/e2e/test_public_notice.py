"""The public notice (policy §11 核准公示): approvals published masked for 5 working days, and
objections from anyone, each on the case's audit task of kind ``objection``, assigned to an
auditor from another district as a spot check is."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from tests.conftest import Clock, application

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}
WANG_FANG = {"id_number": "430104199608202463", "name": "王芳", "diploma_no": "105331202603000456"}
REASON = "申请人并非应届毕业生，其已在另一家公司工作两年以上。"


async def _approved(api: httpx.AsyncClient, make_key: Keys) -> dict[str, object]:
    answer = await api.post("/v1/applications", json=application(**LI_MING),
                            headers=make_key("employer"))  # fmt: skip
    assert answer.json()["status"] == "approved", answer.text
    return answer.json()


async def test_an_approval_is_on_notice_masked_for_five_working_days(
    api: httpx.AsyncClient, make_key: Keys, clock: Clock
) -> None:
    case = await _approved(api, make_key)  # Sunday 22 November 2026
    listed = await api.get("/v1/public/notices")  # no account
    assert listed.status_code == 200, listed.text
    [notice] = listed.json()["items"]
    assert notice == {
        "notice_id": case["approval_number"],
        "business_type": "graduate",
        "business_type_title": {"zh": "应届毕业生接收", "en": "Fresh graduate reception"},
        "name": "李*",
        "employer": {"uscc": "91440305MA5F1Q2RXK", "name": "深圳市前海智造科技有限公司"},
        "approved_on": "2026-11-22",
        "objections_until": "2026-11-27",  # Mon 23 to Fri 27: five working days
    }
    text = listed.text
    assert LI_MING["id_number"] not in text
    assert "李明" not in text
    assert str(case["case_id"]) not in text
    # Filters.
    assert (await api.get("/v1/public/notices?business_type=postdoc")).json()["items"] == []
    assert (await api.get("/v1/public/notices?from=2026-11-23")).json()["items"] == []
    assert len((await api.get("/v1/public/notices?to=2026-11-22")).json()["items"]) == 1
    backwards = await api.get("/v1/public/notices?from=2026-11-23&to=2026-11-22")
    assert backwards.status_code == 422

    clock.advance(days=5)  # Friday 27th: the last day
    assert len((await api.get("/v1/public/notices")).json()["items"]) == 1
    clock.advance(days=1)  # Saturday 28th: over
    assert (await api.get("/v1/public/notices")).json()["items"] == []
    late = await api.post(f"/v1/public/notices/{case['approval_number']}/objections",
                          json={"reason": REASON})  # fmt: skip
    assert late.status_code == 409


async def test_a_page_of_notices_up_to_a_day_is_full_of_that_days_approvals(
    api: httpx.AsyncClient, make_key: Keys, clock: Clock
) -> None:
    first = await _approved(api, make_key)  # Sunday 22 November
    clock.advance(days=1)
    later = await api.post("/v1/applications", json=application(**WANG_FANG),
                           headers=make_key("employer"))  # fmt: skip
    assert later.json()["status"] == "approved"
    page = (await api.get("/v1/public/notices?to=2026-11-22&limit=1")).json()
    assert [n["notice_id"] for n in page["items"]] == [first["approval_number"]]
    assert page["next_cursor"] is None


async def test_an_objection_opens_one_assigned_audit_task_for_the_case(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    auditor = make_key("auditor", district="440304")  # not the employer's district (440305)
    make_key("auditor", district="440305")  # the employer's own: never given it
    case = await _approved(api, make_key)
    url = f"/v1/public/notices/{case['approval_number']}/objections"
    filed = await api.post(url, json={"reason": REASON})
    assert filed.status_code == 202, filed.text
    assert filed.json()["status"] == "received"
    second = "另一条理由：学历证书编号与本人不符。"
    again = await api.post(url, json={"reason": second})
    assert again.status_code == 202

    [task] = (await api.get("/v1/audit/tasks?kind=objection", headers=auditor)).json()["items"]
    assert (task["case_id"], task["status"]) == (case["case_id"], "open")
    assert task["due_date"] == filed.json()["looked_into_by"]
    detail = (await api.get(f"/v1/audit/tasks/{task['task_id']}", headers=auditor)).json()
    assert [o["reason"] for o in detail["objections"]] == [REASON, second]


async def test_an_objection_after_the_task_was_closed_opens_a_task_of_its_own(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    auditor = make_key("auditor", district="440304")
    case = await _approved(api, make_key)
    url = f"/v1/public/notices/{case['approval_number']}/objections"
    assert (await api.post(url, json={"reason": REASON})).status_code == 202
    [first] = (await api.get("/v1/audit/tasks?kind=objection", headers=auditor)).json()["items"]
    findings = {"completeness": "ok", "consistency": "ok", "compliance": "ok",
                "outcome": "confirmed"}  # fmt: skip
    closed = await api.post(f"/v1/audit/tasks/{first['task_id']}/findings", json=findings,
                            headers=auditor)  # fmt: skip
    assert closed.status_code == 200, closed.text

    later = "新的线索：用人单位与申请人签订的劳动合同系事后补签。"
    assert (await api.post(url, json={"reason": later})).status_code == 202
    listed = (await api.get("/v1/audit/tasks?kind=objection", headers=auditor)).json()["items"]
    [second] = [t for t in listed if t["status"] == "open"]
    assert second["task_id"] != first["task_id"]  # a new question, before an auditor again
    assert second["case_id"] == case["case_id"]
    detail = (await api.get(f"/v1/audit/tasks/{second['task_id']}", headers=auditor)).json()
    assert [o["reason"] for o in detail["objections"]] == [later]
    answered = (await api.get(f"/v1/audit/tasks/{first['task_id']}", headers=auditor)).json()
    assert (answered["status"], answered["outcome"]) == ("closed", "confirmed")
    assert [o["reason"] for o in answered["objections"]] == [REASON]  # as it was closed
    # The first task's closure entry still matches it: nothing closed was written again.
    assert verify(container.database.engine).intact


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": "   "}, "reason"), ({"reason": "x" * 2001}, "reason"),
     ({"reason": REASON, "name": "举报人"}, "name")],
)  # fmt: skip
async def test_an_objection_needs_a_reason_of_sensible_size(
    api: httpx.AsyncClient, make_key: Keys, body: dict[str, str], field: str
) -> None:
    case = await _approved(api, make_key)
    answer = await api.post(f"/v1/public/notices/{case['approval_number']}/objections",
                            json=body)  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"][-1] == field


async def test_objections_to_no_notice_and_floods_are_refused(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    unknown = await api.post("/v1/public/notices/4403-2026-999999/objections",
                             json={"reason": REASON})  # fmt: skip
    assert unknown.status_code == 404
    malformed = await api.post("/v1/public/notices/nothing/objections", json={"reason": REASON})
    assert malformed.status_code == 422
    case = await _approved(api, make_key)
    url = f"/v1/public/notices/{case['approval_number']}/objections"
    answers = [(await api.post(url, json={"reason": REASON})).status_code for _ in range(7)]
    # Five recorded in a burst from one address (the unknown notice's was not recorded).
    assert answers == [202] * 5 + [429] * 2
    body = json.dumps((await api.get("/v1/public/notices")).json(), ensure_ascii=False)
    assert REASON not in body  # objections are not published

"""The applicant's own view (policy §11): the case id and its access code, and nothing else,
show the case's status and stages and every registry query made about the person, for the
case and in dry runs on their ID number by anyone (查询留痕)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from miaopi.bootstrap import Container
from miaopi.records.tables import case_events
from tests.conftest import application, graduate

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
FUTIAN = "91440304MA5H3T8P2L"
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}


def _own(case_id: str, code: str) -> tuple[str, dict[str, str]]:
    return f"/v1/applicant/cases/{case_id}", {"X-Access-Code": code}


async def test_the_applicant_sees_the_case_and_every_query_about_them(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    answer = await api.post("/v1/applications", json=application(uscc=FUTIAN, **LI_MING),
                            headers=hr)  # fmt: skip
    case = answer.json()
    code = case["access_code"]
    assert len(code) >= 27  # 160 bits, URL-safe
    # Answered once: a read of the case does not show it again.
    read = await api.get(f"/v1/applications/{case['case_id']}", headers=hr)
    assert read.json()["access_code"] is None

    # Another client tries the person's ID number in a dry run; and someone else's.
    channel = make_key("channel", uscc=None)
    probe = await api.post("/v1/evaluations", json=application(**LI_MING), headers=channel)
    assert probe.status_code == 200, probe.text
    other = await api.post("/v1/evaluations", json=application(**graduate(1)), headers=channel)
    assert other.status_code == 200, other.text

    url, headers = _own(case["case_id"], code)
    view = await api.get(url, headers=headers)  # no API key
    assert view.status_code == 200, view.text
    body = view.json()
    assert (body["status"], body["approval_number"]) == ("approved", case["approval_number"])
    assert body["applicant"] == {"name": "李*"}
    assert [s["stage"] for s in body["stages"]] == ["decided"]
    queries = body["registry_queries"]
    own = [q for q in queries if q["for_this_case"]]
    dry = [q for q in queries if not q["for_this_case"]]
    assert {q["registry"] for q in own} == {e["registry"] for e in case["evidence"]}
    assert all(q["client"] == {"name": "employer test", "role": "employer"} for q in own)
    assert all(q["purpose"] == "decision" for q in own)
    # The channel's dry run on this ID number, query by query; the other person's not at all.
    assert len(dry) == len(probe.json()["evidence"])
    assert all(q["client"] == {"name": "channel test", "role": "channel"} for q in dry)
    assert all(q["purpose"] == "dry_run" for q in dry)
    text = json.dumps(body, ensure_ascii=False)
    assert LI_MING["id_number"] not in text
    assert "李明" not in text

    # The certificate too, with the code instead of a key.
    certificate = await api.get(f"/v1/applications/{case['case_id']}/certificate",
                                headers=headers)  # fmt: skip
    assert certificate.status_code == 200, certificate.text
    assert certificate.json()["approval_number"] == case["approval_number"]


async def test_a_wrong_code_is_an_unknown_case_and_guessing_is_stopped(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    case = (await api.post("/v1/applications", json=application(uscc=FUTIAN, **LI_MING),
                           headers=hr)).json()  # fmt: skip
    url, right = _own(case["case_id"], case["access_code"])
    wrong = await api.get(url, headers={"X-Access-Code": "A" * 27})
    unknown = await api.get(_own("0" * 26, "A" * 27)[0], headers={"X-Access-Code": "A" * 27})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json()["detail"] == unknown.json()["detail"]
    malformed = await api.get(url, headers={"X-Access-Code": "short"})
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["loc"] == ["header", "X-Access-Code"]
    no_code = await api.get(url)
    assert no_code.status_code == 422

    for _ in range(8):  # ten wrong codes a minute from one address, the two above included
        assert (await api.get(url, headers={"X-Access-Code": "B" * 27})).status_code == 404
    refused = await api.get(url, headers={"X-Access-Code": "C" * 27})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    # Refused before the code is judged: the right code learns nothing more either.
    assert (await api.get(url, headers=right)).status_code == 429


async def test_the_submitter_issues_a_new_code_which_ends_the_old(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    case = (await api.post("/v1/applications", json=application(uscc=FUTIAN, **LI_MING),
                           headers=hr)).json()  # fmt: skip
    stranger = make_key("employer")  # another employer: not their case
    refused = await api.post(f"/v1/applications/{case['case_id']}/access-code", headers=stranger)
    assert refused.status_code == 404
    issued = await api.post(f"/v1/applications/{case['case_id']}/access-code", headers=hr)
    assert issued.status_code == 201, issued.text
    new = issued.json()["access_code"]
    assert new != case["access_code"]
    url, _ = _own(case["case_id"], new)
    assert (await api.get(url, headers={"X-Access-Code": case["access_code"]})).status_code == 404
    assert (await api.get(url, headers={"X-Access-Code": new})).status_code == 200
    # On the case's history: who issued a code, and when.
    with container.database.engine.connect() as conn:
        events = conn.execute(
            select(case_events.c.event).where(case_events.c.case_id == case["case_id"])
        ).scalars().all()  # fmt: skip
    assert events == ["decided", "access_code_issued"]

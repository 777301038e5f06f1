"""One live approval per person (policy §5): a second application is referred, naming the
first; two at the same moment, and exactly one is approved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from tests.conftest import application, graduate

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]


def _criterion(case: dict, criterion: str) -> dict:
    return next(c for c in case["decision"]["criteria"] if c["id"] == criterion)


async def test_a_second_application_for_a_person_is_referred_naming_the_first(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    first = (await api.post("/v1/applications", json=application(), headers=make_key())).json()
    assert first["status"] == "approved"
    other_employer = make_key("channel", uscc=None)  # a change of employer, through a channel
    second = await api.post("/v1/applications", json=application(), headers=other_employer)
    assert second.status_code == 201
    case = second.json()
    assert case["status"] == "referred"
    live = _criterion(case, "no_live_approval")
    assert live["result"] == "fail"
    assert live["on_fail"] == "refer"
    assert live["facts"]["latest_prior_approval_number"] == first["approval_number"]


@pytest.mark.parametrize("at_once", [2, 6])
async def test_applications_for_one_person_at_the_same_moment_approve_exactly_one(
    api: httpx.AsyncClient, make_key: Keys, container: Container, at_once: int
) -> None:
    person = graduate(7)
    keys = [make_key() for _ in range(at_once)]  # each its own client: no shared idempotency
    answers = await asyncio.gather(
        *(api.post("/v1/applications", json=application(**person), headers=k) for k in keys)
    )
    assert [a.status_code for a in answers] == [201] * at_once
    cases = [a.json() for a in answers]
    approved = [c for c in cases if c["status"] == "approved"]
    assert len(approved) == 1
    for case in cases:
        if case is not approved[0]:
            assert case["status"] == "referred"
            assert _criterion(case, "no_live_approval")["result"] == "fail"
    assert verify(container.database.engine).intact


async def test_a_revoked_approval_no_longer_holds_the_person(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    employer = make_key("employer", uscc="91440304MA5H3T8P2L")  # class C: always drawn
    auditor = make_key("auditor", district="440305")
    body = application(uscc="91440304MA5H3T8P2L", **graduate(9))
    first = (await api.post("/v1/applications", json=body, headers=employer)).json()
    [task] = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"]
    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={"completeness": "ok", "consistency": "ok", "compliance": "issue",
              "outcome": "revoked", "reason": "forged"},
        headers=auditor,
    )  # fmt: skip
    assert closed.status_code == 200
    again = (await api.post("/v1/applications", json=body, headers=employer)).json()
    # Not held by the revoked approval; barred for 5 years by its revocation instead.
    assert _criterion(again, "no_live_approval")["result"] == "pass"
    assert _criterion(again, "no_fraud_bar")["result"] == "fail"
    assert first["case_id"] != again["case_id"]


async def test_an_officer_cannot_approve_a_second_live_approval(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    person = graduate(11)
    first = (await api.post("/v1/applications", json=application(**person), headers=make_key()))
    assert first.json()["status"] == "approved"
    second = (await api.post("/v1/applications", json=application(**person), headers=make_key()))
    assert second.json()["status"] == "referred"
    officer = make_key("officer", district="440304")
    queue = (await api.get("/v1/reviews", headers=officer)).json()["items"]
    [review] = [r for r in queue if r["case_id"] == second.json()["case_id"]]
    url = f"/v1/reviews/{review['review_id']}"
    assert (await api.post(f"{url}/claim", headers=officer)).status_code == 200
    refused = await api.post(
        f"{url}/decision",
        json={"outcome": "approved", "resolutions": [{
            "criterion": "no_live_approval", "result": "pass", "basis": "note",
            "note": "a change of employer"}]},
        headers=officer,
    )  # fmt: skip
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/live-approval")
    assert first.json()["approval_number"] in refused.json()["detail"]
    assert (await api.get(url, headers=officer)).json()["status"] == "in_review"

"""The API over HTTP, with the mock registries and the bundled personas."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, update

from miaopi.api.app import create_app
from miaopi.api.schemas import ApplicationIn
from miaopi.bootstrap import Container, bootstrap
from miaopi.eligibility.model import canonical_json
from miaopi.records.tables import idempotency_keys
from miaopi.settings import Settings
from tests.conftest import (
    EMPLOYER,
    NOW,
    ON_POSTGRES,
    OTHER_EMPLOYER,
    application,
    sessions_ended,
)

pytestmark = pytest.mark.anyio

# A graduate approved as a case: what every request of the burst below decides, if it does.
_DECIDED = ("miaopi_decisions_total",
            {"business_type": "graduate", "outcome": "approved", "purpose": "case"})  # fmt: skip

# What an unanswered or unknown diploma leaves undecided.
DIPLOMA_UNKNOWN = dict.fromkeys(
    (
        "degree_verified",
        "full_time_study",
        "degree_level_eligible",
        "within_graduation_window",
        "age_within_cap",
    ),
    "unknown",
)

PERSONAS = [
    # (id_number, name, diploma_no, uscc, outcome, criteria that did not pass)
    ("420102200203151232", "李明", "104861202602000123", EMPLOYER, "approved", {}),
    ("430104199608202463", "王芳", "105331202603000456", EMPLOYER, "approved", {}),
    (
        "510104200111023588",
        "陈晨",
        "106101202602000789",
        EMPLOYER,
        "rejected",
        {"full_time_study": "fail"},
    ),
    (
        "410105198605014713",
        "赵磊",
        "104591202602000321",
        EMPLOYER,
        "rejected",
        {"age_within_cap": "fail"},
    ),
    (
        "350102200009095822",
        "孙丽",
        "103841202302000654",
        EMPLOYER,
        "rejected",
        {"within_graduation_window": "fail"},
    ),
    (
        "330106200301206157",
        "周杰",
        "103351202602000987",
        EMPLOYER,
        "rejected",
        {"degree_verified": "fail"},
    ),
    (
        "61011320020707737X",
        "吴昊",
        "104861202602000123",
        EMPLOYER,
        "rejected",
        {"degree_verified": "fail"},
    ),
    (
        "440304200204048429",
        "郑爽",
        "105901202602000111",
        EMPLOYER,
        "rejected",
        {"not_local_hukou": "fail"},
    ),
    (
        "37010220011212965X",
        "冯雪",
        "104221202602000222",
        EMPLOYER,
        "rejected",
        {"identity_verified": "fail"},
    ),
    (
        "320106200102141117",
        "何伟",
        "102841202602000333",
        EMPLOYER,
        "referred",
        {"no_criminal_record": "fail"},
    ),
    (
        "210102200010102267",
        "许静",
        "101411202602000444",
        EMPLOYER,
        "referred",
        {"good_credit": "fail"},
    ),
    (
        "130102199906063314",
        "韩冰",
        "100801202603000555",
        EMPLOYER,
        "rejected",
        {"no_fraud_bar": "fail"},
    ),
    (
        "450103200305054486",
        "曹阳",
        "126081202601000666",
        EMPLOYER,
        "referred",
        {"degree_level_eligible": "fail", "age_within_cap": "unknown"},
    ),
    (
        "520102200208085514",
        "彭涛",
        "106571202602000777",
        EMPLOYER,
        "referred",
        DIPLOMA_UNKNOWN,
    ),
    (
        "530102200103036646",
        "邓超",
        "106731202602000888",
        EMPLOYER,
        "referred",
        {
            c: "unknown"
            for c in (
                "identity_verified",
                "no_criminal_record",
                "not_local_hukou",
                "age_within_cap",
            )
        },
    ),
    (
        "620102200012257779",
        "谢娜",
        "107301202602000999",
        EMPLOYER,
        "referred",
        {"good_credit": "unknown", "no_fraud_bar": "unknown"},
    ),
    (
        "360102200202288820",
        "蒋欣",
        "104031202602000135",
        "91440306MA5J4U9W6A",
        "referred",
        {"employer_eligible": "fail"},
    ),
    # unknown to the police, claiming someone else's diploma: proven ineligible all the same
    (
        "110101199003074477",
        "路人",
        "104861202602000123",
        EMPLOYER,
        "rejected",
        {
            "identity_verified": "unknown",
            "no_criminal_record": "unknown",
            "not_local_hukou": "unknown",
            "age_within_cap": "unknown",
            "degree_verified": "fail",
        },
    ),
    # a diploma number CHSI does not know
    (
        "420102200203151232",
        "李明",
        "999991202602000000",
        EMPLOYER,
        "referred",
        DIPLOMA_UNKNOWN,
    ),
]


@pytest.mark.parametrize(
    ("id_number", "name", "diploma_no", "uscc", "verdict", "not_passed"), PERSONAS
)
async def test_each_persona_is_decided_as_the_policy_says(
    api: httpx.AsyncClient,
    make_key: Callable[..., dict[str, str]],
    id_number: str,
    name: str,
    diploma_no: str,
    uscc: str,
    verdict: str,
    not_passed: dict[str, str],
) -> None:
    auth = make_key("employer", uscc=uscc)
    response = await api.post(
        "/v1/applications", json=application(id_number, name, diploma_no, uscc), headers=auth
    )
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["status"] == case["decision"]["outcome"] == verdict
    got = {c["id"]: c["result"] for c in case["decision"]["criteria"] if c["result"] != "pass"}
    assert got == not_passed
    assert (case["approval_number"] is not None) == (verdict == "approved")
    assert bool(case["decision"]["entitlements"]) == (verdict == "approved")
    assert case["decision"]["ruleset"]["version"] == "2021.08"
    assert case["decision"]["ruleset"]["fingerprint"].startswith("sha256:")


async def test_an_approved_case_is_explained_and_read_back(
    api: httpx.AsyncClient, make_key: Callable[..., dict[str, str]]
) -> None:
    auth = make_key()
    created = (await api.post("/v1/applications", json=application(), headers=auth)).json()
    assert created["approval_number"] == "4403-2026-000001"
    assert created["decision"]["entitlements"] == [{"id": "living_subsidy", "amount_cny": 15000}]
    assert created["applicant"] == {"name": "李*", "id_number": "420102********1232"}
    assert created["employer"] == {"uscc": EMPLOYER, "name": "深圳市前海智造科技有限公司"}
    age = next(c for c in created["decision"]["criteria"] if c["id"] == "age_within_cap")
    assert age["facts"] == {"age": 24, "diploma_level": "bachelor", "cap": 35}
    assert age["registries"] == ["police", "education"]
    assert {e["registry"] for e in created["evidence"]} == {
        "police",
        "education",
        "credit",
        "revocations",
    }
    assert all(e["status"] == "ok" and e["reference"] for e in created["evidence"])

    read = await api.get(f"/v1/applications/{created['case_id']}", headers=auth)
    assert read.status_code == 200
    # The same case; the applicant's access code was in the submission's answer only.
    assert created["access_code"]
    assert read.json() == {**created, "access_code": None}

    second = (
        await api.post(
            "/v1/applications",
            json=application("430104199608202463", "王芳", "105331202603000456"),
            headers=auth,
        )
    ).json()
    assert second["approval_number"] == "4403-2026-000002"
    assert second["decision"]["entitlements"] == [{"id": "living_subsidy", "amount_cny": 25000}]


async def test_a_case_survives_a_restart(settings: Settings, make_key) -> None:
    first = bootstrap(settings, clock=lambda: NOW)
    auth = make_key()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(first)), base_url="http://t"
    ) as api:
        case = (await api.post("/v1/applications", json=application(), headers=auth)).json()
    await first.aclose()

    second = bootstrap(settings, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(second)), base_url="http://t"
    ) as api:
        again = await api.get(f"/v1/applications/{case['case_id']}", headers=auth)
    await second.aclose()
    assert again.status_code == 200
    assert again.json()["approval_number"] == case["approval_number"]


async def test_idempotency_key_replays_the_same_case_and_refuses_a_different_body(
    api: httpx.AsyncClient, container: Container, make_key
) -> None:
    auth = {**make_key(), "Idempotency-Key": "hr-0001"}
    first = await api.post("/v1/applications", json=application(), headers=auth)
    again = await api.post("/v1/applications", json=application(), headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    # The same case, as JSON; the access code was given once (a new one is issued on request).
    assert again.json() == {**first.json(), "access_code": None}
    listed = (await api.get("/v1/applications", headers=auth)).json()
    assert len(listed["items"]) == 1

    other = await api.post("/v1/applications", json=application(name="李敏"), headers=auth)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["errors"][0]["loc"] == ["header", "idempotency-key"]


async def test_a_key_recorded_with_the_bodys_plain_hash_still_replays(
    api: httpx.AsyncClient, container: Container, make_key
) -> None:
    """Keys recorded before the body's hash was keyed hold its plain SHA-256: a retry sent
    across the upgrade gets its case, and a different body is still refused."""
    auth = {**make_key(), "Idempotency-Key": "hr-before-the-upgrade"}
    first = await api.post("/v1/applications", json=application(), headers=auth)
    assert first.status_code == 201
    body = ApplicationIn.model_validate(application()).model_dump(mode="json")
    with container.database.engine.begin() as conn:
        plain = hashlib.sha256(canonical_json(body)).hexdigest()
        assert conn.execute(update(idempotency_keys).values(request_hash=plain)).rowcount == 1

    again = await api.post("/v1/applications", json=application(), headers=auth)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.json()["case_id"] == first.json()["case_id"]
    other = await api.post("/v1/applications", json=application(name="李敏"), headers=auth)
    assert other.status_code == 422


@pytest.mark.skipif(not ON_POSTGRES, reason="takes the database server's sessions away")
async def test_a_submission_the_database_cannot_take_is_503_and_its_retry_is_decided_once(
    api: httpx.AsyncClient, container: Container, make_key
) -> None:
    auth = make_key()
    warm = await api.post("/v1/applications", json=application(), headers=auth)
    assert warm.status_code == 201
    headers = {**auth, "Idempotency-Key": "hr-db-down"}
    body = application("430104199608202463", "王芳", "105331202603000456")

    with sessions_ended(container.database.engine.url.database or "", refuse_new=True):
        refused = await api.post("/v1/applications", json=body, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["type"].endswith("/database-unavailable")

    retried = await api.post("/v1/applications", json=body, headers=headers)
    again = await api.post("/v1/applications", json=body, headers=headers)
    assert (retried.status_code, again.status_code) == (201, 200)
    assert retried.json()["approval_number"] == "4403-2026-000002"  # no number lost or doubled
    assert again.json()["case_id"] == retried.json()["case_id"]


@contextmanager
def every_decision_locked_out(engine: Engine) -> Iterator[None]:
    """Another transaction holds what every decision takes: on PostgreSQL the ledger's head (an
    operator's session left open, a migration), on SQLite the write slot (another process's
    writer stopped in its transaction)."""
    if engine.dialect.name == "sqlite":
        fd = os.open(f"{engine.url.database}-writer", os.O_RDWR)  # a lock of its own, as a
        try:  # process's: flock conflicts between open files, in one process too
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    with engine.connect() as holder, holder.begin():
        holder.exec_driver_sql("SELECT last_seq FROM ledger_head WHERE id = 1 FOR UPDATE")
        yield


async def test_a_decision_waits_for_a_lock_held_elsewhere_a_bounded_time(
    settings: Settings, make_key: Callable[..., dict[str, str]]
) -> None:
    container = bootstrap(settings.model_copy(update={"database_lock_timeout_s": 0.5}))
    container.database.open_on_this_loop()
    headers = {**make_key(), "Idempotency-Key": "hr-locked-out"}
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        with every_decision_locked_out(container.database.engine):
            started = time.monotonic()
            refused = await api.post("/v1/applications", json=application(), headers=headers)
            waited = time.monotonic() - started
        retried = await api.post("/v1/applications", json=application(), headers=headers)
    await container.aclose()
    container.database.dispose()
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("/database-unavailable")
    assert refused.headers["Retry-After"] == "1"
    assert 0.5 <= waited < 3  # the lock was never let go: without a bound, never answered
    # Nothing of the refused attempt was kept: the retry is decided, numbered first.
    assert retried.status_code == 201, retried.text
    assert retried.json()["approval_number"] == "4403-2026-000001"


async def test_a_statement_the_database_refuses_is_a_500_not_an_outage_to_retry(
    container: Container, make_key, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite reports "no such table" as an OperationalError too; it is not the database being
    # away, and a client told to retry would retry for ever.
    auth = {**make_key(), "Idempotency-Key": "hr-no-table"}
    with container.database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE idempotency_keys")
    container.database.open_on_this_loop()
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        with caplog.at_level(logging.ERROR, logger="miaopi.api"):
            answer = await api.post(
                "/v1/applications", json=application(), headers={**auth, "X-Request-ID": "hr-42"}
            )
    await container.aclose()
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Retry-After" not in answer.headers
    # The operator finds the error's log line by the id the client reports.
    assert answer.headers["x-request-id"] == "hr-42"
    unhandled = [r for r in caplog.records if r.getMessage().startswith("unhandled")]
    assert [getattr(r, "request_id", None) for r in unhandled] == ["hr-42"]


async def test_an_unexpected_error_is_logged_and_answered_with_the_requests_id(
    container: Container, make_key, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object, **__: object) -> object:
        raise RuntimeError("a fault no handler knows")

    container.decider.decide = broken  # type: ignore[method-assign]
    container.database.open_on_this_loop()
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        with caplog.at_level(logging.ERROR, logger="miaopi.api"):
            answer = await api.post(
                "/v1/applications",
                json=application(),
                headers={**make_key(), "X-Request-ID": "hr-43"},
            )
    await container.aclose()
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "hr-43"
    unhandled = [r for r in caplog.records if r.getMessage().startswith("unhandled RuntimeError")]
    assert [getattr(r, "request_id", None) for r in unhandled] == ["hr-43"]


async def test_other_employers_cannot_see_or_submit_for_a_case(
    api: httpx.AsyncClient, make_key
) -> None:
    mine, theirs = make_key(), make_key(uscc=OTHER_EMPLOYER)
    case = (await api.post("/v1/applications", json=application(), headers=mine)).json()
    hidden = await api.get(f"/v1/applications/{case['case_id']}", headers=theirs)
    assert hidden.status_code == 404
    assert (await api.get("/v1/applications", headers=theirs)).json()["items"] == []
    forbidden = await api.post("/v1/applications", json=application(), headers=theirs)
    assert forbidden.status_code == 403
    unknown = await api.get("/v1/applications/does-not-exist", headers=mine)
    assert unknown.status_code == 404


async def test_channels_see_what_they_submitted_and_admins_see_personal_data(
    api: httpx.AsyncClient, make_key
) -> None:
    channel, other_channel, admin = make_key("channel"), make_key("channel"), make_key("admin")
    case = (await api.post("/v1/applications", json=application(), headers=channel)).json()
    assert (
        await api.get(f"/v1/applications/{case['case_id']}", headers=other_channel)
    ).status_code == 404
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=admin)).json()
    assert seen["applicant"] == {"name": "李明", "id_number": "420102200203151232"}
    assert (
        await api.post("/v1/applications", json=application(), headers=admin)
    ).status_code == 403


async def test_listing_is_newest_first_filtered_and_paginated(
    api: httpx.AsyncClient, make_key
) -> None:
    auth = make_key()
    for persona in PERSONAS[:5]:
        await api.post("/v1/applications", json=application(*persona[:4]), headers=auth)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/applications", params=params, headers=auth)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert [c["case_id"] for c in seen] == [
        c["case_id"]
        for c in (await api.get("/v1/applications", params={"limit": 10}, headers=auth)).json()[
            "items"
        ]
    ]
    rejected = (
        await api.get("/v1/applications", params={"status": "rejected"}, headers=auth)
    ).json()
    assert {c["status"] for c in rejected["items"]} == {"rejected"}
    assert len(rejected["items"]) == 3
    bad = await api.get("/v1/applications", params={"cursor": "garbage"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (application(id_number="420102200203151233"), ["body", "applicant", "id_number"]),
        # Beijing, but no county 0199: stdnum's lookup raised KeyError, and this was a 500.
        (application(id_number="110199199001011232"), ["body", "applicant", "id_number"]),
        (application(uscc="91440305MA5F1Q2RX1"), ["body", "employer", "uscc"]),
        (application(diploma_no=None), ["body", "claims", "diploma_no"]),
        (application(business_type="talent"), ["body", "business_type"]),
        (
            application(commitment={"accepted": False, "version": "2026-01"}),
            ["body", "commitment", "accepted"],
        ),
        (application(consent={"data_query": False}), ["body", "consent", "data_query"]),
        (application(nickname="x"), ["body", "nickname"]),
        ({**application(), "commitment": None}, ["body", "commitment"]),
        # A client's encoding fault, not a name: it was decided, and rejected on the record.
        (application(name="李\u0000明"), ["body", "applicant", "name"]),
        (application(name="李\r\n明"), ["body", "applicant", "name"]),
        (application(name="李\t明"), ["body", "applicant", "name"]),
        (
            application(commitment={"accepted": True, "version": "2026-01\u0000"}),
            ["body", "commitment", "version"],
        ),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    api: httpx.AsyncClient, make_key, body: dict, loc: list[str]
) -> None:
    response = await api.post("/v1/applications", json=body, headers=make_key())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= problem.keys()
    assert loc in [e["loc"] for e in problem["errors"]]


async def test_malformed_json_and_missing_keys_are_problems(
    api: httpx.AsyncClient, make_key
) -> None:
    broken = await api.post(
        "/v1/applications",
        content=b"{not json",
        headers={**make_key(), "content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.headers["content-type"] == "application/problem+json"
    anonymous = await api.post("/v1/applications", json=application())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = await api.post(
        "/v1/applications", json=application(), headers={"Authorization": "Bearer mp_0000_nope"}
    )
    assert wrong.status_code == 401


async def test_a_dry_run_decides_as_of_a_date_and_records_nothing(
    api: httpx.AsyncClient, make_key
) -> None:
    auth = make_key()
    body = {**application(), "as_of": "2028-07-01"}  # a day past the 2-year window
    result = await api.post("/v1/evaluations", json=body, headers=auth)
    assert result.status_code == 200, result.text
    decision = result.json()
    assert "case_id" not in decision
    assert "approval_number" not in decision
    assert decision["decision"]["outcome"] == "rejected"
    assert decision["decision"]["application_date"] == "2028-07-01"
    assert (await api.get("/v1/applications", headers=auth)).json()["items"] == []

    too_early = await api.post(
        "/v1/evaluations", json={**application(), "as_of": "2015-01-01"}, headers=auth
    )
    assert too_early.status_code == 422
    assert too_early.json()["errors"][0]["loc"] == ["body", "as_of"]
    # The submission after the dry run gets the first approval number of the year.
    created = (await api.post("/v1/applications", json=application(), headers=auth)).json()
    assert created["approval_number"] == "4403-2026-000001"


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json()["status"] == "ok"
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "rules": "ok"}


async def test_concurrent_identical_requests_make_one_case_and_no_gap_in_numbers(
    api: httpx.AsyncClient, make_key
) -> None:
    import asyncio

    auth = {**make_key(), "Idempotency-Key": "burst-1"}
    decided_before = REGISTRY.get_sample_value(*_DECIDED) or 0.0
    answers = await asyncio.gather(
        *(api.post("/v1/applications", json=application(), headers=auth) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["case_id"] for a in answers}) == 1
    assert len((await api.get("/v1/applications", headers=auth)).json()["items"]) == 1
    # Every request that decided asked the registries, winner and losers alike, and every
    # one of those queries is in the case's access log (the losers' used to roll back).
    decided = (REGISTRY.get_sample_value(*_DECIDED) or 0.0) - decided_before
    log = (await api.get(f"/v1/applications/{answers[0].json()['case_id']}/access-log",
                         headers=auth)).json()["items"]  # fmt: skip
    per_decision = len(answers[0].json()["evidence"])
    assert decided >= 2  # the four raced: some decided before the first one recorded its case
    assert len(log) == decided * per_decision
    # The losers' transactions rolled back, counter increments included.
    nxt = await api.post(
        "/v1/applications",
        json=application("430104199608202463", "王芳", "105331202603000456"),
        headers={"Authorization": auth["Authorization"]},
    )
    assert nxt.json()["approval_number"] == "4403-2026-000002"

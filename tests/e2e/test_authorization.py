"""Who may do what: every endpoint against every kind of caller (OWASP API1, API5).

One case is submitted by a channel for a Futian employer (district 440304) and drawn for a
spot check (risk class C); the only eligible auditor is the Nanshan one (440305), so whose task
it is, is known. Each row lists the status every caller gets; callers are tried in the order
written, so the one that changes state comes last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from miaopi.api.openapi import openapi_document
from miaopi.bootstrap import Container
from miaopi.records.clients import create_client, revoke_client
from tests.conftest import application

pytestmark = pytest.mark.anyio

FUTIAN = "91440304MA5H3T8P2L"
NANSHAN = "91440305MA5G2K7N95"
FINDINGS = {"completeness": "ok", "consistency": "ok", "compliance": "ok", "outcome": "confirmed"}
CALLERS = (
    "anonymous", "revoked", "employer", "other_employer", "channel", "other_channel",
    "other_auditor", "auditor", "officer", "registrar", "finance", "admin",
)  # fmt: skip
# 何伟: referred (a criminal record fails in refer mode): the case the counter reviews.
REFERRED = application(uscc=FUTIAN, id_number="320106200102141117", name="何伟",
                       diploma_no="102841202602000333")  # fmt: skip
DECISION = {"outcome": "approved", "resolutions": [
    {"criterion": "no_criminal_record", "result": "pass", "basis": "note", "note": "spent"}]}
NOTICE = {"items": [{"criterion": "no_criminal_record", "description": "无犯罪记录证明"}]}


@dataclass
class World:
    api: httpx.AsyncClient
    keys: dict[str, dict[str, str]]
    case_id: str
    task_id: str
    review_id: str
    referred_id: str


@pytest.fixture
async def world(api: httpx.AsyncClient, container: Container) -> World:
    def key(role: str, **kw: Any) -> dict[str, str]:
        _, secret = create_client(container.database.engine, role, role, **kw)
        return {"Authorization": f"Bearer {secret}"}

    keys = {
        "anonymous": {},
        "employer": key("employer", uscc=FUTIAN),
        "other_employer": key("employer", uscc=NANSHAN),
        "channel": key("channel"),
        "other_channel": key("channel"),
        "auditor": key("auditor", district="440305"),
        "other_auditor": key("auditor", district="440304"),  # recused from Futian's cases
        "officer": key("officer", district="440306"),
        "registrar": key("registrar"),
        "finance": key("finance"),
        "admin": key("admin"),
    }
    revoked, secret = create_client(container.database.engine, "admin", "gone")
    revoke_client(container.database.engine, revoked.key_prefix)
    keys["revoked"] = {"Authorization": f"Bearer {secret}"}
    created = await api.post(
        "/v1/applications", json=application(uscc=FUTIAN), headers=keys["channel"]
    )
    assert created.json()["status"] == "approved"
    [task] = (await api.get("/v1/audit/tasks", headers=keys["auditor"])).json()["items"]
    referred = await api.post("/v1/applications", json=REFERRED, headers=keys["channel"])
    assert referred.json()["status"] == "referred"
    [review] = (await api.get("/v1/reviews", headers=keys["officer"])).json()["items"]
    return World(
        api, keys, created.json()["case_id"], task["task_id"], review["review_id"],
        referred.json()["case_id"],
    )  # fmt: skip


def _expect(default: int | None = None, **by_caller: int) -> dict[str, int]:
    out = {"anonymous": 401, "revoked": 401}
    out.update({c: default for c in CALLERS if c not in out and default is not None})
    out.update(by_caller)
    return out


SCOPED_READ = _expect(
    200, other_employer=404, other_channel=404, other_auditor=404, officer=403, registrar=403,
    finance=403,
)
SUBMITTERS = ("employer", "other_employer", "channel", "other_channel")
SUBMITTERS_200 = _expect(403, **dict.fromkeys(SUBMITTERS, 200))
SUBMITTERS_404 = _expect(403, **dict.fromkeys(SUBMITTERS, 404))
SUBMITTERS_422 = _expect(403, **dict.fromkeys(SUBMITTERS, 422))
MATRIX: list[tuple[str, str, Any, dict[str, int]]] = [
    ("POST", "/v1/applications", application(uscc=FUTIAN),
     _expect(403, employer=201, channel=201, other_channel=201)),
    ("POST", "/v1/evaluations", application(uscc=FUTIAN),
     _expect(403, employer=200, channel=200, other_channel=200, admin=200)),
    ("GET", "/v1/applications/{case}", None, SCOPED_READ),
    ("GET", "/v1/applications/{case}/access-log", None, SCOPED_READ),
    ("GET", "/v1/applications", None, _expect(200, officer=403, registrar=403, finance=403)),
    ("POST", "/v1/applications/{case}/replay", None,
     _expect(403, auditor=200, other_auditor=404, admin=200)),
    ("GET", "/v1/rules", None, _expect(200)),
    ("GET", "/v1/rules/graduate", None, _expect(200)),
    ("POST", "/v1/rules:reload", None, _expect(403, admin=200)),
    ("GET", "/v1/audit/tasks", None, _expect(403, auditor=200, other_auditor=200, admin=200)),
    ("GET", "/v1/audit/tasks/{task}", None,
     _expect(403, auditor=200, other_auditor=404, admin=200)),
    ("GET", "/v1/audit/periods/2026-11", None,
     _expect(403, auditor=200, other_auditor=200, admin=200)),
    ("GET", "/v1/audit/periods/2026-11/samples.csv", None,
     _expect(403, auditor=200, other_auditor=200, admin=200)),
    ("POST", "/v1/audit/tasks/{task}/findings", FINDINGS,
     _expect(403, other_auditor=404, auditor=200)),
    ("GET", "/v1/reviews", None, _expect(403, officer=200, admin=200)),
    ("GET", "/v1/reviews/{review}", None, _expect(403, officer=200, admin=200)),
    # The officer has not taken it: only its holder asks or decides (the last row takes it).
    ("POST", "/v1/reviews/{review}/document-requests", NOTICE, _expect(403)),
    ("POST", "/v1/reviews/{review}/decision", DECISION, _expect(403)),
    # Its submitter may upload (JSON is not a document: 415); a stranger learns nothing.
    ("POST", "/v1/applications/{referred}/documents", None,
     _expect(403, employer=415, channel=415, other_employer=404, other_channel=404)),
    ("GET", "/v1/applications/{case}/documents", None,
     _expect(403, officer=404, auditor=200, other_auditor=404, admin=200)),
    ("GET", "/v1/applications/{case}/documents/" + "0" * 32, None,
     _expect(403, officer=404, auditor=404, other_auditor=404, admin=404)),
    ("POST", "/v1/reviews/{review}/claim", None, _expect(403, officer=200)),
    # Webhooks and events belong to the clients that submit (a URL that is not https: 422).
    ("POST", "/v1/webhook-endpoints", {"url": "ftp://hooks.example.com/in"}, SUBMITTERS_422),
    ("GET", "/v1/webhook-endpoints", None, SUBMITTERS_200),
    ("DELETE", "/v1/webhook-endpoints/" + "0" * 32, None, SUBMITTERS_404),
    ("GET", "/v1/webhook-endpoints/" + "0" * 32 + "/deliveries", None, SUBMITTERS_404),
    ("GET", "/v1/events", None, {**SUBMITTERS_200, "admin": 200}),
    ("POST", "/v1/events/" + "0" * 32 + "/redeliver", None, SUBMITTERS_404),
    ("POST", "/v1/application-batches", {"items": []}, SUBMITTERS_422),  # none: 422
    ("GET", "/v1/application-batches/" + "0" * 32, None, SUBMITTERS_404),
    ("GET", "/v1/application-batches/" + "0" * 32 + "/results", None, SUBMITTERS_404),
    # Certificates: the case's submitter and the admin fetch it; anyone verifies.
    ("GET", "/v1/applications/{case}/certificate", None,
     _expect(403, employer=200, channel=200, other_employer=404, other_channel=404, admin=200)),
    ("GET", "/v1/certificates/keys", None, dict.fromkeys(CALLERS, 200)),
    ("GET", "/v1/certificates/revocations", None, dict.fromkeys(CALLERS, 200)),
    ("POST", "/v1/certificates/verify", {"token": "not.a.certificate-at-all"},
     dict.fromkeys(CALLERS, 200)),
    # After the approval: the police station and the finance office (unknown number: 404).
    ("POST", "/v1/registrations", {"approval_number": "4403-2026-999999",
     "id_number": "420102200203151232", "registered_on": "2026-11-23", "police_station": "福田"},
     _expect(403, registrar=404)),
    ("POST", "/v1/applications/{case}/entitlements/none/payments",
     {"amount_cny": 1, "paid_on": "2026-11-30", "reference": "r"}, _expect(403, finance=404)),
    # The applicant's view takes the access code, which no API key stands in for (no code: 422).
    ("GET", "/v1/applicant/cases/{case}", None, dict.fromkeys(CALLERS, 422)),
    ("POST", "/v1/applications/{case}/access-code", None,
     _expect(403, employer=201, channel=201, other_employer=404, other_channel=404)),
    # The public notice: anyone reads it and objects (to no approval on notice: 404).
    ("GET", "/v1/public/notices", None, dict.fromkeys(CALLERS, 200)),
    ("POST", "/v1/public/notices/4403-2026-999999/objections", {"reason": "不是应届毕业生。" * 2},
     dict.fromkeys(CALLERS, 404)),
    # The authority's figures: the admin and auditors (no person is named in them).
    ("GET", "/v1/stats", None, _expect(403, auditor=200, other_auditor=200, admin=200)),
    ("GET", "/healthz", None, dict.fromkeys(CALLERS, 200)),
    ("GET", "/readyz", None, dict.fromkeys(CALLERS, 200)),
    ("GET", "/metrics", None, dict.fromkeys(CALLERS, 200)),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=lambda v: str(v))
async def test_every_caller_gets_what_its_role_and_scope_allow(
    world: World, method: str, path: str, body: Any, expected: dict[str, int]
) -> None:
    url = path.format(
        case=world.case_id, task=world.task_id, review=world.review_id, referred=world.referred_id
    )
    got = {}
    for caller in CALLERS:
        response = await world.api.request(method, url, json=body, headers=world.keys[caller])
        got[caller] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert got == expected


async def test_scoped_lists_show_each_caller_only_its_own(world: World) -> None:
    def ids(caller: str) -> Any:
        return world.api.get("/v1/applications", headers=world.keys[caller])

    # Officers work from the queue; registrars and the finance office by approval number.
    readers = [c for c in CALLERS[2:] if c not in ("officer", "registrar", "finance")]
    seen = {c: {i["case_id"] for i in (await ids(c)).json()["items"]} for c in readers}
    both = {world.case_id, world.referred_id}
    assert seen == {
        "employer": both,
        "other_employer": set(),
        "channel": both,
        "other_channel": set(),
        "other_auditor": set(),
        "auditor": {world.case_id},  # the case of their task only
        "admin": both,
    }


async def test_an_employer_cannot_submit_for_another_employer(world: World) -> None:
    response = await world.api.post(
        "/v1/applications", json=application(uscc=FUTIAN), headers=world.keys["other_employer"]
    )
    assert response.status_code == 403


async def test_case_ids_cannot_be_guessed_or_walked(world: World) -> None:
    assert len(world.case_id) >= 32  # 128 random bits, in hex
    near = world.case_id[:-1] + ("A" if world.case_id[-1] != "A" else "B")
    for candidate in (near, "1", "00000000000000000000000000000001", "%27%20OR%201=1"):
        response = await world.api.get(f"/v1/applications/{candidate}", headers=world.keys["admin"])
        assert response.status_code == 404


def test_the_matrix_covers_every_documented_operation() -> None:
    rows = [(method, path) for method, path, *_ in MATRIX]
    for template, item in openapi_document()["paths"].items():
        pattern = re.compile(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$")
        for method in item:
            assert any(m == method.upper() and pattern.match(p) for m, p in rows), (
                method, template,
            )  # fmt: skip


async def test_a_revoked_key_stops_working_within_the_key_cache_lifetime(
    container: Container,
) -> None:
    from miaopi.api.app import create_app
    from miaopi.api.deps import RecentKeys

    app = create_app(container)
    app.state.recent_keys = RecentKeys(ttl_s=0.3)
    client, secret = create_client(container.database.engine, "admin", "leaving")
    auth = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as api:
        assert (await api.get("/v1/applications", headers=auth)).status_code == 200
        revoke_client(container.database.engine, client.key_prefix)
        await anyio.sleep(0.35)
        gone = await api.get("/v1/applications", headers=auth)
    assert gone.status_code == 401

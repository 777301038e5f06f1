"""Property: whatever the registries do, no fault becomes an approval and no case is lost.

Faults are injected at the HTTP boundary, in front of the mock registries: a registry may
answer normally, hang past the budget, answer 5xx, refuse with 4xx, or send garbage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from miaopi.adapters.mock.dataset import Dataset
from miaopi.adapters.mock.registries import MOCK_APPS
from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.evidence.ports import REGISTRY_NAMES
from miaopi.records.clients import create_client
from miaopi.records.tables import cases, live_approvals
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, EMPLOYER, RULES, Clock

BUDGET_S = 0.3
HANG_S = 30  # how long a hung registry holds a request
FAULTS = ("none", "hang", "500", "503", "403", "garbage", "wrong_schema")

# Applicants the bundled registries approve, one per business type.
APPROVED = [
    ("graduate", "李明", "420102200203151232", {"diploma_no": "104861202602000123"}),
    ("in_service", "陆远", "340104199603122155", {"diploma_no": "104251201802000001"}),
    ("overseas_returnee", "唐糖", "440106199705201897",
     {"certification_no": "CSCSE-2025-GB-000321"}),
    ("postdoc", "萧博", "510107199304045373", {}),
]  # fmt: skip


def _alternatives(business_type: str) -> set[str]:
    """Criteria of a rule file that pass on any one of several branches (``pass_when: any``)."""
    data = yaml.safe_load((RULES / f"{business_type}.yaml").read_text(encoding="utf-8"))
    return {
        c["id"]
        for c in data["criteria"]
        if isinstance(c["pass_when"], dict) and len(c["pass_when"].get("any", [])) > 1
    }


ALTERNATIVES = {business_type: _alternatives(business_type) for business_type, *_ in APPROVED}


class FaultyRegistry(httpx.AsyncBaseTransport):
    """A registry's mock behind a switch that makes it misbehave."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.fault = inner, "none"
        self.arrivals: list[float] = []  # when each request reached the registry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(time.monotonic())
        if self.fault == "hang":
            await asyncio.sleep(HANG_S)
        if self.fault in ("500", "503", "403"):
            return httpx.Response(int(self.fault), json={"error": "injected"})
        if self.fault == "garbage":
            return httpx.Response(200, content=b'{"reference": "x", "record": {"na')
        if self.fault == "wrong_schema":
            return httpx.Response(200, json={"reference": "x", "record": {"surprise": True}})
        return await self.inner.handle_async_request(request)


class World:
    def __init__(
        self, container: Container, switches: dict[str, FaultyRegistry], auth: dict
    ) -> None:
        self.container, self.switches, self.auth = container, switches, auth

    def __repr__(self) -> str:  # hypothesis prints it with a failing example
        return "World(...)"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp: Path = tmp_path_factory.mktemp("faults")
    dataset = Dataset.bundled()
    switches = {
        name: FaultyRegistry(httpx.ASGITransport(app=MOCK_APPS[name](dataset, 0)))
        for name in REGISTRY_NAMES
    }
    container = bootstrap(
        Settings(
            database_url=f"sqlite:///{tmp}/p.db",
            rules_dir=RULES,
            data_key=DATA_KEY,
            registry_timeout_s=BUDGET_S,
            registry_breaker_failures=10_000,  # every example sees the faults it drew
            _env_file=None,  # type: ignore[call-arg]
        ),
        clock=Clock(),
        transports=dict(switches),
    )
    _, key = create_client(container.database.engine, "employer", "e", uscc=EMPLOYER)
    auth = {"Authorization": f"Bearer {key}"}

    async def warm_up() -> None:
        # First use compiles each rule version: do it before examples are timed.
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            for applicant in APPROVED:
                response = await api.post("/v1/evaluations", json=_body(applicant), headers=auth)
                assert response.json()["decision"]["outcome"] == "approved"

    anyio.run(warm_up)
    yield World(container, switches, auth)
    anyio.run(container.aclose)


def _body(applicant: tuple[str, str, str, dict[str, str]]) -> dict[str, Any]:
    business_type, name, id_number, claims = applicant
    return {
        "business_type": business_type,
        "applicant": {"name": name, "id_number": id_number},
        "employer": {"uscc": EMPLOYER},
        "claims": claims,
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }


def _count(container: Container) -> int:
    with container.database.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(cases)).scalar_one()


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    applicant=st.sampled_from(APPROVED),
    pattern=st.fixed_dictionaries({name: st.sampled_from(FAULTS) for name in REGISTRY_NAMES}),
)
# Found by a CI run: the postdoc's CHSI doctorate stands while CSCSE hangs — approved, rightly.
@example(applicant=APPROVED[3], pattern={**dict.fromkeys(REGISTRY_NAMES, "none"),
                                         "overseas_credentials": "hang"})  # fmt: skip
# And the same fault where CSCSE is the only source of the criterion: never approved.
@example(applicant=APPROVED[2], pattern={**dict.fromkeys(REGISTRY_NAMES, "none"),
                                         "overseas_credentials": "hang"})  # fmt: skip
def test_no_fault_becomes_an_approval_and_every_case_is_recorded_once(
    world: World, applicant: tuple[str, str, str, dict[str, str]], pattern: dict[str, str]
) -> None:
    container, switches, auth = world.container, world.switches, world.auth
    for name, fault in pattern.items():
        switches[name].fault = fault
        switches[name].arrivals.clear()
    body = _body(applicant)
    # Each example applies afresh: the same persona approved by an earlier example would hold
    # a live approval (policy §5) and be referred, which is not what this property is about.
    with container.database.engine.begin() as conn:
        conn.execute(live_approvals.delete())
    before = _count(container)
    key = uuid.uuid4()  # fresh for every run, replays and shrinking included

    async def submit_twice() -> tuple[httpx.Response, httpx.Response, float]:
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            headers = {**auth, "Idempotency-Key": str(key)}
            started = time.perf_counter()
            first = await api.post("/v1/applications", json=body, headers=headers)
            took = time.perf_counter() - started
            again = await api.post("/v1/applications", json=body, headers=headers)
        return first, again, took

    first, again, took = anyio.run(submit_twice)
    assert first.status_code == 201, first.text
    case = first.json()
    asked = {e["registry"] for e in case["evidence"]}
    faulty = {r for r in asked if pattern.get(r, "none") != "none"}
    answered = asked - {e["registry"] for e in case["evidence"] if e["status"] != "ok"}
    if case["status"] == "approved":
        # No criterion passes on a fault. A criterion with alternative sources (a postdoc's
        # doctorate from CHSI *or* CSCSE) stands on any one that answered; every other one
        # needs all of its registries to have answered.
        statuses = {f"{e['registry']}/{e['query']}": e["status"] for e in case["evidence"]}
        either = ALTERNATIVES[applicant[0]]
        for criterion in case["decision"]["criteria"]:
            sources = set(criterion["registries"])
            holds = sources & answered if criterion["id"] in either else sources <= answered
            assert holds, (applicant[0], pattern, statuses, criterion["id"])
    else:  # everything answered: the bundled applicant is approved
        assert faulty, case["decision"]
    # Registries are asked at once: each one's first request reached it before the first
    # registry's budget ran out; asked one after another, a hung registry would hold the next
    # back for the whole budget. (Wall-clock time alone moved with the machine's load.)
    firsts = [s.arrivals[0] for s in switches.values() if s.arrivals]
    assert len(firsts) >= 2
    assert max(firsts) - min(firsts) < BUDGET_S
    # And the budget cut the hung ones: a hung registry holds its request for 30 s. (Ten
    # budgets, 3 s, was exceeded once by a loaded machine, at 3.1 s: a third of the hang still
    # proves the cut.)
    assert took < HANG_S / 3
    # Recorded exactly once, and the retry with the same key replays it.
    assert _count(container) == before + 1
    assert again.status_code == 200
    assert again.json()["case_id"] == case["case_id"]

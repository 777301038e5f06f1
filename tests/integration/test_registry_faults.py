"""Every adapter under every fault, at the HTTP boundary (respx): retries, budget, breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.http.breaker import CircuitBreaker
from miaopi.adapters.http.registries import (
    HttpCreditRegistry,
    HttpEducationRegistry,
    HttpHrssRegistry,
    HttpOverseasCredentialsRegistry,
    HttpPoliceRegistry,
    HttpSocialSecurityRegistry,
)
from miaopi.evidence.ports import Evidence

pytestmark = pytest.mark.anyio
ID = "420102200203151232"
DIPLOMA = {
    "diploma_no": "104861202602000123",
    "holder_id_number": ID,
    "level": "bachelor",
    "study_mode": "full_time",
    "institution": "武汉大学",
    "graduation_date": "2026-06-30",
    "status": "valid",
}
CERT = {
    "certification_no": "CSCSE-1",
    "holder_id_number": ID,
    "level": "master",
    "country": "GB",
    "institution": "UCL",
    "awarded_date": "2025-11-30",
    "status": "valid",
}


@dataclass(frozen=True)
class Lookup:
    registry: str
    adapter: type
    method: str
    path: str
    record: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.registry}.{self.method}"

    def run(self, http: RegistryHttpClient) -> Awaitable[Evidence]:
        return getattr(self.adapter(http), self.method)("KEY-1")


LOOKUPS = [
    Lookup("police", HttpPoliceRegistry, "person", "persons/lookup", {
        "id_number": ID, "name": "李明", "birth_date": "2002-03-15", "status": "normal",
        "hukou_region": "420102", "criminal_records": [],
    }),
    Lookup("education", HttpEducationRegistry, "diploma", "diplomas/lookup", DIPLOMA),
    Lookup("education", HttpEducationRegistry, "diplomas_of", "diplomas/by-holder",
           {"holder_id_number": ID, "diplomas": [DIPLOMA]}),
    Lookup("overseas_credentials", HttpOverseasCredentialsRegistry, "certification",
           "certifications/lookup", CERT),
    Lookup("overseas_credentials", HttpOverseasCredentialsRegistry, "certifications_of",
           "certifications/by-holder", {"holder_id_number": ID, "certifications": [CERT]}),
    Lookup("social_security", HttpSocialSecurityRegistry, "history", "contributions/lookup", {
        "id_number": ID, "periods": [{"employer_uscc": "91440305MA5F1Q2RXK", "region": "440305",
                                      "from_month": "2025-01", "to_month": None}],
    }),
    Lookup("credit", HttpCreditRegistry, "person", "persons/lookup",
           {"id_number": ID, "dishonest_debtor": False, "severe_dishonesty": False,
            "fraud_bars": []}),
    Lookup("credit", HttpCreditRegistry, "employer", "employers/lookup", {
        "uscc": "91440305MA5F1Q2RXK", "name": "前海智造", "status": "active", "region": "440305",
        "risk_class": "B", "severe_dishonesty": False,
    }),
    Lookup("hrss", HttpHrssRegistry, "title", "titles/lookup", {
        "title_certificate_no": "T-1", "holder_id_number": ID, "name": "工程师",
        "level": "intermediate", "status": "valid",
    }),
    Lookup("hrss", HttpHrssRegistry, "postdoc", "postdocs/lookup", {
        "id_number": ID, "records": [{"station": "深圳大学", "station_region": "440303",
                                      "status": "in_station", "entered_on": "2025-09-01",
                                      "left_on": None}],
    }),
]  # fmt: skip
BASE = "https://registry.test/"


def client(
    lookup: Lookup, router: respx.MockRouter, budget_s: float = 1.0, **breaker: Any
) -> RegistryHttpClient:
    http = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(router.async_handler))
    return RegistryHttpClient(
        lookup.registry,  # type: ignore[arg-type]
        http,
        budget_s,
        CircuitBreaker(**breaker),
        backoff_s=(0.01, 0.02),
    )


def hang(seconds: float) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        raise AssertionError("should have been cut off")

    return slow


def answer(lookup: Lookup) -> httpx.Response:
    return httpx.Response(200, json={"reference": "REF-1", "record": lookup.record})


@pytest.mark.parametrize("lookup", LOOKUPS, ids=str)
@pytest.mark.parametrize(
    ("fault", "status", "calls"),
    [
        (httpx.ConnectError("refused"), "unavailable", 2),
        (httpx.ReadTimeout("slow"), "unavailable", 2),
        (httpx.Response(500, json={"error": "x"}), "unavailable", 2),
        (httpx.Response(503, text="down"), "unavailable", 2),
        (httpx.Response(403, json={"error": "forbidden"}), "unavailable", 1),
        (httpx.Response(400, json={"error": "bad"}), "unavailable", 1),
        (httpx.Response(404, json={"reference": "NONE-1"}), "no_record", 1),
        (httpx.Response(200, text='{"reference": "x", "record": {"na'), "invalid", 1),
        (httpx.Response(200, json={"reference": "x", "record": {"unexpected": 1}}), "invalid", 1),
        (httpx.Response(200, json=[1, 2]), "invalid", 1),
    ],
    ids=[
        "connect-error",
        "timeout",
        "500",
        "503",
        "403",
        "400",
        "404",
        "not-json",
        "schema",
        "not-object",
    ],
)
async def test_each_fault_of_each_adapter_becomes_its_status(
    lookup: Lookup, fault: Any, status: str, calls: int
) -> None:
    async with respx.mock(base_url=BASE) as router:
        route = router.post(lookup.path)
        if isinstance(fault, Exception):
            route.mock(side_effect=fault)
        else:
            route.mock(return_value=fault)
        evidence = await lookup.run(client(lookup, router))
    assert evidence.status == status
    assert evidence.record is None
    assert route.call_count == calls  # transient faults are retried once, answers never
    assert evidence.attempts == calls
    assert evidence.registry == lookup.registry


@pytest.mark.parametrize("lookup", LOOKUPS, ids=str)
async def test_a_5xx_then_an_answer_is_ok_on_the_retry(lookup: Lookup) -> None:
    async with respx.mock(base_url=BASE) as router:
        route = router.post(lookup.path).mock(
            side_effect=[httpx.Response(502, text="bad gateway"), answer(lookup)]
        )
        evidence = await lookup.run(client(lookup, router))
    assert (evidence.status, evidence.attempts, route.call_count) == ("ok", 2, 2)
    assert evidence.reference == "REF-1"


@pytest.mark.parametrize("lookup", LOOKUPS, ids=str)
async def test_slow_then_ok_answers_within_the_budget(lookup: Lookup) -> None:
    calls = 0

    async def first_slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)
        return answer(lookup)

    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post(lookup.path).mock(side_effect=first_slow)
        started = time.perf_counter()
        evidence = await lookup.run(client(lookup, router, budget_s=0.6))
    assert (evidence.status, evidence.attempts) == ("ok", 2)
    assert time.perf_counter() - started < 0.6


@pytest.mark.parametrize("lookup", LOOKUPS, ids=str)
async def test_a_registry_that_never_answers_costs_no_more_than_the_budget(lookup: Lookup) -> None:
    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post(lookup.path).mock(side_effect=hang(30))
        started = time.perf_counter()
        evidence = await lookup.run(client(lookup, router, budget_s=0.5))
    assert evidence.status == "unavailable"
    assert evidence.attempts == 2
    assert time.perf_counter() - started < 0.5 + 0.05


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("lookup", LOOKUPS, ids=str)
async def test_the_breaker_opens_fails_fast_and_half_opens_to_probe(lookup: Lookup) -> None:
    clock = FakeClock()
    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.post(lookup.path).mock(return_value=httpx.Response(503))
        http = client(lookup, router, failures=3, reset_s=30, clock=clock)
        for _ in range(3):
            assert (await lookup.run(http)).attempts == 2
        assert http.breaker.state == "open"

        # Open: the registry is not asked at all.
        calls = route.call_count
        fast = await lookup.run(http)
        assert (fast.status, fast.attempts) == ("unavailable", 0)
        assert "circuit open" in (fast.detail or "")
        assert route.call_count == calls

        # After the reset time one probe goes through; a failure opens the breaker again.
        clock.now += 30
        assert (await lookup.run(http)).attempts == 2
        assert http.breaker.state == "open"
        assert (await lookup.run(http)).attempts == 0

        # A successful probe closes it.
        clock.now += 30
        route.mock(return_value=answer(lookup))
        assert (await lookup.run(http)).status == "ok"
        assert http.breaker.state == "closed"


async def test_half_open_lets_one_probe_through_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=clock)
    breaker.failed()
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # others wait for its result
    breaker.abandoned()  # the probe was cancelled: the next query may probe
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()


async def test_a_cancelled_probe_does_not_wedge_the_breaker() -> None:
    clock = FakeClock()
    lookup = LOOKUPS[0]
    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post(lookup.path).mock(side_effect=hang(30))
        http = client(lookup, router, budget_s=5, failures=1, reset_s=10, clock=clock)
        http.breaker.failed()
        clock.now += 10
        probe = asyncio.ensure_future(lookup.run(http))
        await asyncio.sleep(0.05)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert http.breaker.allow()

"""Registry clients against a faked HTTP boundary (respx): every outcome becomes evidence."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest
import respx

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.http.registries import HttpEducationRegistry, HttpPoliceRegistry
from miaopi.adapters.mock.dataset import Dataset
from miaopi.bootstrap import registry_client
from miaopi.settings import Settings

pytestmark = pytest.mark.anyio
BASE = "https://police.registry.test/v1/"
PERSON = {
    "id_number": "420102200203151232",
    "name": "李明",
    "birth_date": "2002-03-15",
    "status": "normal",
    "hukou_region": "420102",
    "criminal_records": [],
}


def police(router: respx.MockRouter, timeout_s: float = 0.5) -> HttpPoliceRegistry:
    client = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(router.async_handler))
    return HttpPoliceRegistry(RegistryHttpClient("police", client, timeout_s))


async def test_an_answer_is_ok_with_the_validated_record_and_reference() -> None:
    async with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("persons/lookup").respond(
            200, json={"reference": "POL-1", "record": PERSON}
        )
        evidence = await police(router).person("420102200203151232")
    assert (evidence.status, evidence.reference) == ("ok", "POL-1")
    assert evidence.record["birth_date"] == "2002-03-15"
    # The ID number travels in the body, never in the URL that logs and proxies keep.
    assert "420102200203151232" not in str(route.calls.last.request.url)


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (httpx.Response(404, json={"reference": "POL-2"}), "no_record"),
        (httpx.Response(500, json={"error": "x"}), "unavailable"),
        (httpx.Response(503, text="down"), "unavailable"),
        (httpx.Response(403, json={"error": "forbidden"}), "unavailable"),
        (httpx.Response(200, text='{"reference": "x", "record": {"na'), "invalid"),
        (
            httpx.Response(200, json={"reference": "x", "record": {**PERSON, "status": "odd"}}),
            "invalid",
        ),
        (httpx.Response(200, json={"reference": "x", "record": {**PERSON, "extra": 1}}), "invalid"),
        (httpx.Response(200, json={"reference": "x"}), "invalid"),
        (httpx.Response(200, json=[1, 2]), "invalid"),
    ],
)
async def test_every_failure_becomes_a_non_ok_status(response: httpx.Response, status: str) -> None:
    async with respx.mock(base_url=BASE) as router:
        router.post("persons/lookup").mock(return_value=response)
        evidence = await police(router).person("420102200203151232")
    assert evidence.status == status
    assert evidence.record is None


async def test_connection_errors_and_timeouts_are_unavailable() -> None:
    async with respx.mock(base_url=BASE) as router:
        router.post("persons/lookup").mock(side_effect=httpx.ConnectError("refused"))
        assert (await police(router).person("x")).status == "unavailable"
    async with respx.mock(base_url=BASE) as router:
        router.post("persons/lookup").mock(side_effect=httpx.ReadTimeout("slow"))
        assert (await police(router).person("x")).status == "unavailable"


async def test_a_registry_slower_than_the_deadline_is_unavailable_within_the_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"reference": "late", "record": PERSON})

    # Our deadline cancels the call before respx records it as made.
    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("persons/lookup").mock(side_effect=slow)
        evidence = await police(router, timeout_s=0.2).person("x")
    assert evidence.status == "unavailable"
    assert evidence.elapsed_ms < 1000


async def test_education_lookup_posts_the_diploma_number() -> None:
    base = "https://chsi.registry.test/"
    diploma = {
        "diploma_no": "104861202602000123",
        "holder_id_number": "420102200203151232",
        "level": "bachelor",
        "study_mode": "full_time",
        "institution": "武汉大学",
        "graduation_date": "2026-06-30",
        "status": "valid",
    }
    async with respx.mock(base_url=base) as router:
        route = router.post("diplomas/lookup", json={"diploma_no": "104861202602000123"}).respond(
            200, json={"reference": "CHSI-1", "record": diploma}
        )
        client = httpx.AsyncClient(
            base_url=base, transport=httpx.MockTransport(router.async_handler)
        )
        evidence = await HttpEducationRegistry(RegistryHttpClient("education", client, 1)).diploma(
            "104861202602000123"
        )
    assert route.called
    assert evidence.status == "ok"
    assert evidence.record["level"] == "bachelor"


async def test_a_cookie_a_registry_sets_never_rides_along_on_the_next_lookup() -> None:
    settings = Settings(registry_police_url=BASE, _env_file=None)  # type: ignore[call-arg]
    async with respx.mock(base_url=BASE) as router:
        route = router.post("persons/lookup").respond(
            200,
            json={"reference": "POL-1", "record": PERSON},
            headers={"Set-Cookie": "session=about-li-ming; Path=/"},
        )
        transport = httpx.MockTransport(router.async_handler)
        http = registry_client("police", settings, Dataset.bundled, transport=transport)
        registry = HttpPoliceRegistry(RegistryHttpClient("police", http, 0.5))
        await registry.person("420102200203151232")
        await registry.person("110101199003074477")
        # Asked through httpx's own request path too, the client neither keeps nor sends it.
        await http.post("persons/lookup", json={"id_number": "110101199003074477"})
        await http.post("persons/lookup", json={"id_number": "110101199003074477"})
        await http.aclose()
    assert not any("cookie" in call.request.headers for call in route.calls)
    assert len(http.cookies) == 0


async def test_a_lookup_goes_through_the_transport_the_client_mounts_for_the_registry() -> None:
    # Lookups skip ``client.send``; the client's choice of transport per URL must still hold,
    # or a proxy or mount an operator configures would be bypassed.
    async with respx.mock(base_url=BASE) as router:
        router.post("persons/lookup").respond(200, json={"reference": "POL-1", "record": PERSON})
        unreachable = httpx.MockTransport(lambda request: httpx.Response(502))
        client = httpx.AsyncClient(
            base_url=BASE,
            transport=unreachable,
            mounts={"https://police.registry.test": httpx.MockTransport(router.async_handler)},
        )
        evidence = await HttpPoliceRegistry(RegistryHttpClient("police", client, 0.5)).person(
            "420102200203151232"
        )
    assert (evidence.status, evidence.reference) == ("ok", "POL-1")


async def test_a_lookup_on_a_closed_client_is_refused_not_sent() -> None:
    async with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.post("persons/lookup").respond(
            200, json={"reference": "x", "record": PERSON}
        )
        client = httpx.AsyncClient(
            base_url=BASE, transport=httpx.MockTransport(router.async_handler)
        )
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await HttpPoliceRegistry(RegistryHttpClient("police", client, 0.5)).person(
                "420102200203151232"
            )
    assert not route.called


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
async def test_an_oversized_answer_through_any_transport_is_invalid_and_not_asked_again(
    compressed: bool,
) -> None:
    # A proxy or a mount an operator configures is a transport of httpx's, not the production
    # one: its answers are bounded as they decode, like the production transport's.
    payload = json.dumps({"reference": "POL-5", "record": {**PERSON, "name": "李" * 800_000}})
    content, headers = payload.encode(), {"Content-Type": "application/json"}
    if compressed:  # about 7 kB as sent, 2.4 MB decoded
        content, headers = gzip.compress(content), {**headers, "Content-Encoding": "gzip"}
    async with respx.mock(base_url=BASE) as router:
        route = router.post("persons/lookup").respond(200, content=content, headers=headers)
        evidence = await police(router).person("420102200203151232")
    assert (evidence.status, evidence.detail) == ("invalid", "answer larger than 1024 KiB")
    assert route.call_count == 1

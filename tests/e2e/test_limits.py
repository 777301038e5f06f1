"""Abuse limits: oversized bodies get 413, a client over its rate gets 429 with Retry-After."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, EMPLOYER, RULES, Clock, application

pytestmark = pytest.mark.anyio


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[[], dict]]]:
    container = bootstrap(
        Settings(
            database_url=f"sqlite:///{tmp_path}/l.db",
            rules_dir=RULES,
            data_key=DATA_KEY,
            max_body_bytes=2048,
            rate_limit_per_minute=60,
            rate_limit_burst=3,
            _env_file=None,  # type: ignore[call-arg]
        ),
        clock=Clock(),
    )

    def key() -> dict[str, str]:
        _, secret = create_client(container.database.engine, "employer", "e", EMPLOYER)
        return {"Authorization": f"Bearer {secret}"}

    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        yield api, key
    await container.aclose()


async def test_an_oversized_body_is_refused_before_it_is_read(limited) -> None:  # type: ignore[no-untyped-def]
    api, key = limited
    body = application(applicant={"name": "李" * 3000, "id_number": "420102200203151232"})
    response = await api.post("/v1/applications", json=body, headers=key())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "2048 bytes" in response.json()["detail"]


async def test_a_streamed_body_without_length_is_cut_off_too(limited) -> None:  # type: ignore[no-untyped-def]
    api, key = limited

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = await api.post("/v1/applications", content=chunks(), headers=key())
    assert response.status_code == 413


async def test_a_client_over_its_rate_waits_and_others_do_not(limited) -> None:  # type: ignore[no-untyped-def]
    api, key = limited
    busy, other = key(), key()
    codes = [(await api.get("/v1/applications", headers=busy)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = await api.get("/v1/applications", headers=busy)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["title"] == "Too many requests"
    assert (await api.get("/v1/applications", headers=other)).status_code == 200


@pytest.fixture
async def two_at_once(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A process that makes two decisions at once, each waiting 0.3 s on CHSI."""
    container = bootstrap(
        Settings(
            database_url=f"sqlite:///{tmp_path}/d.db",
            rules_dir=RULES,
            data_key=DATA_KEY,
            max_decisions_in_flight=2,
            mock_latency_ms="education=300",
            _env_file=None,  # type: ignore[call-arg]
        ),
        clock=Clock(),
    )
    key = create_client(container.database.engine, "employer", "e", EMPLOYER)[1]
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=10) as api:
        yield api, {"Authorization": f"Bearer {key}"}
    await container.aclose()


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_past_its_decisions_at_once_a_process_turns_applications_away_unrecorded(
    two_at_once,  # type: ignore[no-untyped-def]
) -> None:
    api, auth = two_at_once
    turned_away_before = _metric(
        (await api.get("/metrics")).text, "miaopi_decisions_turned_away_total"
    )

    async def submit(n: int) -> httpx.Response:
        return await api.post(
            "/v1/applications", json=application(), headers={**auth, "Idempotency-Key": f"k{n}"}
        )

    answers = await asyncio.gather(*(submit(n) for n in range(5)))
    assert sorted(a.status_code for a in answers) == [201, 201, 503, 503, 503]
    away = [n for n, a in enumerate(answers) if a.status_code == 503]
    for n in away:
        assert answers[n].headers["content-type"] == "application/problem+json"
        assert answers[n].headers["Retry-After"] == "1"
        assert answers[n].json()["type"].endswith("/overloaded")
        assert "(2)" in answers[n].json()["detail"]
    listed = (await api.get("/v1/applications", headers=auth)).json()["items"]
    assert len(listed) == 2
    # Nothing was kept under their keys: sent again, each is decided now, not replayed.
    again = [await submit(n) for n in away]
    assert [a.status_code for a in again] == [201, 201, 201]
    assert not any("Idempotent-Replayed" in a.headers for a in again)
    metrics = (await api.get("/metrics")).text
    assert _metric(metrics, "miaopi_decisions_turned_away_total") - turned_away_before == 3
    assert _metric(metrics, "miaopi_decisions_in_flight") == 0


async def test_dry_runs_take_their_places_and_every_place_comes_back(two_at_once) -> None:  # type: ignore[no-untyped-def]
    api, auth = two_at_once
    dry = {**application(), "as_of": "2026-07-01"}
    busy = [
        asyncio.ensure_future(api.post("/v1/evaluations", json=dry, headers=auth)) for _ in "ab"
    ]
    await asyncio.sleep(0.1)  # both are waiting on CHSI
    refused = await api.post("/v1/applications", json=application(), headers=auth)
    assert refused.status_code == 503
    assert [a.status_code for a in await asyncio.gather(*busy)] == [200, 200]
    # A refused request gives back its place too: an employer's application for another
    # employer is refused (403) with a place held.
    other = application(employer={"uscc": "91440305MA5G2K7N95"})
    for _ in range(3):
        assert (await api.post("/v1/applications", json=other, headers=auth)).status_code == 403
    pair = await asyncio.gather(
        *(api.post("/v1/applications", json=application(), headers=auth) for _ in "ab")
    )
    assert [a.status_code for a in pair] == [201, 201]


async def test_a_client_sending_its_body_slowly_holds_no_place(two_at_once) -> None:  # type: ignore[no-untyped-def]
    api, auth = two_at_once
    body = json.dumps(application()).encode()
    go_on = asyncio.Event()

    async def trickled() -> AsyncIterator[bytes]:
        yield body[:20]
        await go_on.wait()  # the rest comes when the test says
        yield body[20:]

    slow = [
        asyncio.ensure_future(
            api.post(
                "/v1/applications",
                content=trickled(),
                headers={**auth, "Content-Type": "application/json"},
            )
        )
        for _ in "ab"
    ]
    await asyncio.sleep(0.1)  # both have sent their headers and a part of their bodies
    assert (await api.post("/v1/applications", json=application(), headers=auth)).status_code == 201
    go_on.set()
    assert [a.status_code for a in await asyncio.gather(*slow)] == [201, 201]

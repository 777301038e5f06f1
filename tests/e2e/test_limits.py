"""Abuse limits: oversized bodies get 413, a client over its rate gets 429 with Retry-After."""

from __future__ import annotations

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
        return {
            "Authorization": f"Bearer {create_client(container.db, 'employer', 'e', EMPLOYER)[1]}"
        }

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

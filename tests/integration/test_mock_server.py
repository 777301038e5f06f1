"""`miaopi mock serve` over real HTTP, asked by the production registry clients (aiohttp)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.http.registries import (
    HttpCreditRegistry,
    HttpEducationRegistry,
    HttpPoliceRegistry,
)
from miaopi.adapters.mock.dataset import Dataset
from miaopi.adapters.mock.registries import serve
from miaopi.bootstrap import registry_client
from miaopi.settings import Settings

pytestmark = pytest.mark.anyio
LI_MING = "420102200203151232"


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(Dataset.bundled(), "127.0.0.1", 0, {"police": 30}, bound.set_result)
    )
    port = await asyncio.wait_for(bound, 10)
    yield f"http://127.0.0.1:{port}"
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[Callable[[str], RegistryHttpClient]]:
    """The production client of a served registry, as bootstrap makes it (aiohttp)."""
    opened: list[httpx.AsyncClient] = []

    def make(registry: str) -> RegistryHttpClient:
        url = {f"registry_{registry}_url": f"{base_url}/{registry}"}
        settings = Settings(_env_file=None, **url)  # type: ignore[call-arg]
        http = registry_client(registry, settings, Dataset.bundled)
        opened.append(http)
        return RegistryHttpClient(registry, http, timeout_s=1.0)  # type: ignore[arg-type]

    yield make
    for http in opened:
        await http.aclose()


Client = Callable[[str], RegistryHttpClient]


async def test_the_served_registries_answer_the_production_clients(client: Client) -> None:
    police = HttpPoliceRegistry(client("police"))
    found = await police.person(LI_MING)
    assert (found.status, found.record["name"]) == ("ok", "李明")
    assert found.reference.startswith("POL-")
    # The latency profile holds over the wire.
    assert found.elapsed_ms >= 30
    assert (await police.person("110101199003074477")).status == "no_record"

    credit = HttpCreditRegistry(client("credit"))
    assert (await credit.person(LI_MING)).record["dishonest_debtor"] is False


async def test_a_persons_faults_reach_the_client_over_http(client: Client) -> None:
    police = HttpPoliceRegistry(client("police"))
    failed = await police.person("530102200103036646")  # the persona whose police answer 500
    assert (failed.status, failed.attempts) == ("unavailable", 2)
    garbled = await HttpCreditRegistry(client("credit")).person("620102200012257779")
    assert garbled.status == "invalid"
    hung = await HttpEducationRegistry(client("education")).diploma("106571202602000777")
    assert hung.status == "unavailable"


async def test_wrong_requests_get_a_clear_answer(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        unknown = await http.post("/police/nothing", json={"id_number": LI_MING})
        assert unknown.status_code == 404
        wrong_method = await http.get("/police/persons/lookup")
        assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
        not_json = await http.post("/police/persons/lookup", content=b"{")
        assert (not_json.status_code, not_json.json()) == (400, {"error": "body must be JSON"})
        no_key = await http.post("/police/persons/lookup", json={"name": "李明"})
        assert no_key.json() == {"error": "id_number is required"}

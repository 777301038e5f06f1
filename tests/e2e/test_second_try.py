"""The automatic second try (policy §9): a referral owed only to a registry that did not answer
is decided again, asking only that registry, and a registry outage costs no trip to the counter.

The education registry's mock sits behind a switch at the HTTP boundary that makes it answer
503 (unavailable) while it is on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from miaopi.adapters.mock.dataset import Dataset
from miaopi.adapters.mock.registries import MOCK_APPS
from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.records.clients import create_client
from miaopi.records.ledger_verify import verify
from miaopi.records.tables import registry_queries, second_tries, supervision_queue
from miaopi.settings import Settings
from tests.conftest import EMPLOYER, Clock, application, graduate

pytestmark = pytest.mark.anyio


class Switch(httpx.AsyncBaseTransport):
    """A registry that answers 503 while ``down``; counts the requests that reach it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.down, self.asked = inner, True, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        if self.down:
            return httpx.Response(503, json={"error": "down for maintenance"})
        return await self.inner.handle_async_request(request)


@pytest.fixture
def education(settings: Settings) -> Switch:
    dataset = Dataset.load(settings.mock_dataset) if settings.mock_dataset else Dataset.bundled()
    return Switch(httpx.ASGITransport(app=MOCK_APPS["education"](dataset, 0)))


@pytest.fixture
def container(settings: Settings, clock: Clock, education: Switch) -> Iterator[Container]:
    made = bootstrap(
        settings.model_copy(update={"registry_breaker_failures": 10_000}),
        clock=clock,
        transports={"education": education},
    )
    yield made
    made.database.dispose()


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    container.database.open_on_this_loop()
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://miaopi.test") as client:
        yield client
    await container.aclose()


@pytest.fixture
def submitter(container: Container) -> dict[str, str]:
    _, key = create_client(container.database.engine, "employer", "e", uscc=EMPLOYER)
    return {"Authorization": f"Bearer {key}"}


async def _refer(api: httpx.AsyncClient, auth: dict[str, str], n: int = 0) -> dict[str, Any]:
    answer = await api.post("/v1/applications", json=application(**graduate(n)), headers=auth)
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["status"] == "referred"
    return case


def _count(container: Container, query: Any) -> int:
    with container.database.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def test_a_referral_owed_to_an_outage_is_approved_on_its_second_try(
    api: httpx.AsyncClient, container: Container, clock: Clock, education: Switch,
    submitter: dict[str, str],
) -> None:  # fmt: skip
    case = await _refer(api, submitter)
    url = f"/v1/applications/{case['case_id']}"
    seen = (await api.get(url, headers=submitter)).json()
    assert seen["second_try"]["attempt"] == 1
    assert "review" not in seen or seen["review"] is None  # not at the counter

    assert await container.second_tries.run() == 0  # not due for 5 minutes
    education.down = False
    clock.advance(minutes=5)
    asked_before = education.asked
    assert await container.second_tries.run() == 1
    assert education.asked == asked_before + 1  # only the registry that failed, once

    seen = (await api.get(url, headers=submitter)).json()
    assert seen["status"] == "approved"
    assert seen["approval_number"].startswith("4403-2026-")
    assert [(d["by"], d["outcome"]) for d in seen["decisions"]] == [
        ("miaopi", "referred"), ("second try", "approved"),
    ]  # fmt: skip
    assert seen["decision"]["outcome"] == "referred"  # the first decision is never rewritten
    assert seen.get("second_try") is None
    # An approval like any other: queued for supervision, on record, chained in the ledger.
    queued = select(func.count()).select_from(supervision_queue)
    assert _count(container, queued.where(supervision_queue.c.case_id == case["case_id"])) == 1
    purposes = select(func.count()).select_from(registry_queries).where(
        registry_queries.c.case_id == case["case_id"], registry_queries.c.purpose == "second_try"
    )
    assert _count(container, purposes) == 2  # the education registry and our own records
    verdict = verify(container.database.engine)
    assert verdict.intact, verdict
    assert verdict.entries == 2
    assert await container.second_tries.run() == 0  # nothing left to try

    # Replay: the first decision from its evidence, the second try from that evidence with
    # the answer it asked again; both as recorded.
    _, admin = create_client(container.database.engine, "admin", "a")
    replayed = await api.post(f"{url}/replay", headers={"Authorization": f"Bearer {admin}"})
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert (body["recorded_outcome"], body["identical"]) == ("referred", True)
    [later] = body["later_decisions"]
    assert (later["by"], later["recorded_outcome"], later["identical"]) == (
        "second try", "approved", True,
    )  # fmt: skip


async def test_after_the_last_try_the_case_goes_to_the_counter_due_from_that_day(
    api: httpx.AsyncClient, container: Container, clock: Clock, submitter: dict[str, str],
) -> None:  # fmt: skip
    case = await _refer(api, submitter)
    for minutes in (5, 25, 90):  # 5, 30 and 120 minutes after the referral
        clock.advance(minutes=minutes)
        assert await container.second_tries.run() == 1
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=submitter)).json()
    assert seen["status"] == "referred"
    assert [d["by"] for d in seen["decisions"]] == ["miaopi"] + ["second try"] * 3
    assert seen["review"]["status"] == "waiting"
    assert seen["review"]["due_date"] == "2026-11-27"  # five working days after Sunday the 22nd
    clock.advance(minutes=500)
    assert await container.second_tries.run() == 0
    verdict = verify(container.database.engine)
    assert verdict.intact, verdict


async def test_a_referral_a_registry_answered_goes_straight_to_the_counter(
    api: httpx.AsyncClient, container: Container, education: Switch, submitter: dict[str, str],
) -> None:  # fmt: skip
    education.down = False
    # 何伟: the police registry answered, with a criminal record (refer mode).
    body = application(id_number="320106200102141117", name="何伟",
                       diploma_no="102841202602000333")  # fmt: skip
    case = (await api.post("/v1/applications", json=body, headers=submitter)).json()
    assert case["status"] == "referred"
    seen = (await api.get(f"/v1/applications/{case['case_id']}", headers=submitter)).json()
    assert seen.get("second_try") is None
    assert seen["review"]["status"] == "waiting"
    with container.database.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(second_tries)).scalar_one() == 0


async def test_instances_running_at_once_decide_each_attempt_once(
    api: httpx.AsyncClient, container: Container, clock: Clock, education: Switch,
    submitter: dict[str, str],
) -> None:  # fmt: skip
    for n in range(3):
        await _refer(api, submitter, n)
    education.down = False
    clock.advance(minutes=5)
    asked_before = education.asked
    done: list[int] = []

    async def instance() -> None:
        done.append(await container.second_tries.run())

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(instance)
    assert sum(done) == 3
    assert education.asked == asked_before + 3
    with container.database.engine.connect() as conn:
        decided = conn.execute(
            select(func.count()).select_from(second_tries).where(second_tries.c.status == "decided")
        ).scalar_one()
    assert decided == 3


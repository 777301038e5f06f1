"""The periodic re-check: a registry that changed its answer opens exactly one audit task."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, REPO, RULES, Clock, application

pytestmark = pytest.mark.anyio

FUTIAN = "91440304MA5H3T8P2L"
LI_MING = "420102200203151232"


class World:
    """The service over a dataset file the test can change, with a clock it can move."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.dataset_path = tmp_path / "dataset.yaml"
        self.dataset = yaml.safe_load(
            (REPO / "adapters" / "mock" / "personas.yaml").read_text(encoding="utf-8")
        )
        self.save()
        self.settings = Settings(
            database_url=database_url,
            rules_dir=RULES,
            data_key=DATA_KEY,
            mock_dataset=self.dataset_path,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.clock = Clock()
        self.containers: list[Container] = []

    def save(self) -> None:
        self.dataset_path.write_text(yaml.safe_dump(self.dataset, allow_unicode=True), "utf-8")

    def person(self, id_number: str) -> dict[str, Any]:
        return next(p for p in self.dataset["persons"] if p["id_number"] == id_number)

    def start(self) -> Container:
        """A fresh service process, reading the dataset as it is now."""
        container = bootstrap(self.settings, clock=self.clock)
        self.containers.append(container)
        return container

    async def recheck(self) -> Any:
        return await self.start().rechecker.run()


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    w = World(tmp_path, database_url)
    yield w
    for c in w.containers:
        await c.aclose()


async def submit(world: World, **who: Any) -> dict[str, Any]:
    container = world.start()
    _, key = create_client(container.database.engine, "employer", "e", uscc=FUTIAN)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        response = await api.post(
            "/v1/applications",
            json=application(uscc=FUTIAN, **who),
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 201
    return response.json()


async def tasks(world: World, kind: str = "recheck") -> list[dict[str, Any]]:
    container = world.start()
    _, key = create_client(container.database.engine, "admin", "a")
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        response = await api.get(
            "/v1/audit/tasks", params={"kind": kind}, headers={"Authorization": f"Bearer {key}"}
        )
    return response.json()["items"]


async def test_a_diploma_revoked_after_approval_opens_one_recheck_task(world: World) -> None:
    case = await submit(world)
    assert case["status"] == "approved"

    world.person(LI_MING)["diplomas"][0]["status"] = "revoked"
    world.save()
    world.clock.advance(days=20)
    too_early = await world.recheck()
    assert too_early.checked == 0
    assert await tasks(world) == []

    world.clock.advance(days=20)  # 40 days after the approval: inside the window
    report = await world.recheck()
    assert (report.checked, report.discrepancies, len(report.tasks)) == (1, 1, 1)
    [task] = await tasks(world)
    assert task["case_id"] == case["case_id"]
    assert task["discrepancy"] == [
        {
            "criterion": "degree_verified",
            "recorded": "pass",
            "rechecked": "fail",
            "registries": ["education"],
        }
    ]
    assert task["due_date"] == "2027-02-20"

    container = world.start()
    _, admin = create_client(container.database.engine, "admin", "a")
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        log = await api.get(
            f"/v1/applications/{case['case_id']}/access-log",
            headers={"Authorization": f"Bearer {admin}"},
        )
    rechecks = [i for i in log.json()["items"] if i["purpose"] == "recheck"]
    assert {i["requested_by"]["role"] for i in rechecks} == {"system"}
    assert ("education", "diploma") in {(i["registry"], i["query"]) for i in rechecks}

    again = await world.recheck()
    assert again.checked == 0
    assert again.tasks == []
    assert len(await tasks(world)) == 1


async def test_an_unchanged_case_is_rechecked_once_and_a_silent_registry_is_retried(
    world: World,
) -> None:
    case = await submit(world)
    world.person(LI_MING)["faults"] = {"education": "error"}
    world.save()
    world.clock.advance(days=31)

    # The education registry answers 500: no answer is no evidence of a problem; try again.
    first = await world.recheck()
    assert (first.checked, first.incomplete, first.discrepancies) == (1, 1, 0)
    assert await tasks(world) == []

    del world.person(LI_MING)["faults"]
    world.save()
    second = await world.recheck()
    assert (second.checked, second.clean) == (1, 1)
    third = await world.recheck()
    assert third.checked == 0
    assert await tasks(world) == []
    assert case["status"] == "approved"


async def test_a_case_found_after_its_window_is_recorded_as_missed(world: World) -> None:
    await submit(world)
    world.clock.advance(days=95)
    report = await world.recheck()
    assert (report.checked, report.missed) == (0, 1)
    assert (await world.recheck()).missed == 0


async def test_the_cli_runs_the_recheck(world: World, tmp_path: Path) -> None:
    await submit(world)
    env = {
        **os.environ,
        "MIAOPI_DATABASE_URL": world.settings.database_url,
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_MOCK_DATASET": str(world.dataset_path),
    }
    done = await anyio.run_process(
        [sys.executable, "-m", "miaopi.cli", "audit", "recheck"], env=env, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    # The command uses the wall clock, so only its report is asserted here; the re-check's
    # behaviour over time is covered above with a moved clock.
    assert done.stdout.startswith(b"checked ")
    assert b"tasks opened" in done.stdout

"""A business type is a rule file and its tests: no Python list to edit.

A copy of the rules gains a type of its own (``talent_graduate``, the graduate rules under
another name, claiming a diploma); the service takes it, publishes it and checks its claims.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import NOW, RULES, application

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    text = (rules / "graduate.yaml").read_text(encoding="utf-8")
    (rules / "talent_graduate.yaml").write_text(
        text.replace("business_type: graduate", "business_type: talent_graduate"),
        encoding="utf-8",
    )
    container = bootstrap(settings.model_copy(update={"rules_dir": rules}), clock=lambda: NOW)
    container.database.open_on_this_loop()
    _, key = create_client(container.database.engine, "channel", "portal")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container)),
        base_url="http://miaopi.test",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield client
    await container.aclose()


async def test_a_type_defined_by_a_rule_file_alone_is_decided(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/applications", json=application(business_type="talent_graduate"))
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["business_type"] == "talent_graduate"
    assert case["status"] == "approved"
    assert case["decision"]["ruleset"]["business_type"] == "talent_graduate"


async def test_its_claims_come_from_its_file(api: httpx.AsyncClient) -> None:
    body = application(business_type="talent_graduate", diploma_no=None)
    answer = await api.post("/v1/applications", json=body)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"loc": ["body", "claims", "diploma_no"], "msg": "required for talent_graduate"}
    ]


async def test_it_is_published_with_the_others(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/v1/rules")).json()
    assert "talent_graduate" in {r["business_type"] for r in listed["items"]}
    document = (await api.get("/openapi.json")).json()
    enum = document["components"]["schemas"]["ApplicationIn"]["properties"]["business_type"]
    assert "talent_graduate" in enum["enum"]


async def test_a_type_no_file_defines_is_refused_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    answer = await api.post("/v1/applications", json=application(business_type="astronaut"))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == ["body", "business_type"]
    listed = await api.get("/v1/applications", params={"business_type": "astronaut"})
    assert listed.status_code == 422

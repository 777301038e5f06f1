"""The registry access log: every query made for a case, with its purpose and who asked."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from miaopi.bootstrap import Container
from miaopi.records.tables import registry_queries
from tests.conftest import OTHER_EMPLOYER, application

pytestmark = pytest.mark.anyio
Keys = Callable[..., dict[str, str]]


async def test_the_access_log_lists_every_query_made_for_the_case(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    employer = make_key()
    case = (await api.post("/v1/applications", json=application(), headers=employer)).json()
    log = await api.get(f"/v1/applications/{case['case_id']}/access-log", headers=employer)
    assert log.status_code == 200
    items = log.json()["items"]
    asked = sorted((e["registry"], e["query"]) for e in case["evidence"])
    assert sorted((i["registry"], i["query"]) for i in items) == asked
    assert len(asked) >= 4  # police, education, credit person and employer, revocations
    assert {i["purpose"] for i in items} == {"decision"}
    assert {i["requested_by"]["role"] for i in items} == {"employer"}
    assert all(i["status"] == "ok" and i["attempts"] == 1 for i in items)
    # Like the case itself, its log is out of other employers' scope.
    other = make_key(uscc=OTHER_EMPLOYER)
    hidden = await api.get(f"/v1/applications/{case['case_id']}/access-log", headers=other)
    assert hidden.status_code == 404


async def test_a_failing_registry_shows_in_the_log_with_its_attempts(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    employer = make_key()
    # 邓超: the police registry answers 500 for him.
    body = application(id_number="530102200103036646", name="邓超", diploma_no="106731202602000888")
    case = (await api.post("/v1/applications", json=body, headers=employer)).json()
    assert case["status"] == "referred"
    items = (
        await api.get(f"/v1/applications/{case['case_id']}/access-log", headers=employer)
    ).json()["items"]
    police = next(i for i in items if i["registry"] == "police")
    assert (police["status"], police["attempts"]) == ("unavailable", 2)


async def test_a_dry_run_records_no_case_but_logs_its_queries(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    employer = make_key()
    response = await api.post("/v1/evaluations", json=application(), headers=employer)
    evaluation_id = response.json()["evaluation_id"]
    with container.database.engine.connect() as conn:
        rows = conn.execute(
            select(registry_queries).where(registry_queries.c.evaluation_id == evaluation_id)
        ).all()
    assert sorted((r.registry, r.query) for r in rows) == sorted(
        (e["registry"], e["query"]) for e in response.json()["evidence"]
    )
    assert {(r.purpose, r.case_id) for r in rows} == {("dry_run", None)}
    listed = await api.get("/v1/applications", headers=employer)
    assert listed.json()["items"] == []

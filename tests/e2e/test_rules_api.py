from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_every_business_type_lists_its_versions(api: httpx.AsyncClient, make_key) -> None:
    response = await api.get("/v1/rules", headers=make_key("channel"))
    assert response.status_code == 200
    items = {i["business_type"]: i for i in response.json()["items"]}
    assert set(items) == {"graduate", "in_service", "overseas_returnee", "postdoc"}
    versions = items["graduate"]["versions"]
    assert [(v["version"], v["in_force"]) for v in versions] == [
        ("2016.09", False),
        ("2021.08", True),
    ]
    assert versions[0]["effective_to"] == "2021-07-31"
    assert all(v["fingerprint"].startswith("sha256:") for v in versions)


async def test_the_version_in_force_shows_its_criteria_and_parameters(
    api: httpx.AsyncClient, make_key
) -> None:
    auth = make_key("auditor", district="440305")
    now = (await api.get("/v1/rules/graduate", headers=auth)).json()
    assert now["version"] == "2021.08"
    assert now["parameters"]["age_caps"] == {"bachelor": 35, "master": 40, "doctorate": 45}
    age = next(c for c in now["criteria"] if c["id"] == "age_within_cap")
    assert age["registries"] == ["police", "education"]
    assert age["description"]["zh"]
    then = (
        await api.get("/v1/rules/graduate", params={"as_of": "2020-01-01"}, headers=auth)
    ).json()
    assert then["version"] == "2016.09"
    assert then["parameters"]["age_caps"]["junior_college"] == 35
    # The fingerprint shown is the one decisions record.
    listed = (await api.get("/v1/rules", headers=auth)).json()["items"]
    assert now["fingerprint"] in {v["fingerprint"] for i in listed for v in i["versions"]}


async def test_rules_need_a_key_and_a_known_business_type(api: httpx.AsyncClient, make_key) -> None:
    assert (await api.get("/v1/rules")).status_code == 401
    unknown = await api.get("/v1/rules/talent", headers=make_key())
    assert unknown.status_code == 422
    early = await api.get("/v1/rules/postdoc", params={"as_of": "2010-01-01"}, headers=make_key())
    assert early.status_code == 404

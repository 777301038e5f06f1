"""in_service, overseas_returnee and postdoc personas, decided over HTTP as the policy says."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from miaopi.adapters.mock.dataset import Dataset
from tests.conftest import EMPLOYER

pytestmark = pytest.mark.anyio
BY_NAME = {p.name: p.id_number for p in Dataset.bundled().persons.values()}

CASES = [
    # (business type, name, claims, outcome, criteria that did not pass)
    ("in_service", "陆远", {"diploma_no": "104251201802000001"}, "approved", {}),
    ("in_service", "钱坤", {"title_certificate_no": "GD2019ZJ000123"}, "approved", {}),
    (
        "in_service",
        "林峰",
        {"diploma_no": "105581201906000002"},
        "rejected",
        {"social_security_with_employer": "fail"},
    ),
    (
        "in_service",
        "高原",
        {"diploma_no": "104231201006000003"},
        "rejected",
        {"age_within_cap": "fail"},
    ),
    (
        "in_service",
        "罗敏",
        {"diploma_no": "125031201506000004"},
        "rejected",
        {"qualification_verified": "fail", "age_within_cap": "fail"},
    ),
    (
        "in_service",
        "梁宇",
        {"diploma_no": "104861201806000005"},
        "rejected",
        {"social_security_with_employer": "fail"},
    ),
    (
        "in_service",
        "宋佳",
        {"diploma_no": "105331201506000006"},
        "referred",
        {"social_security_with_employer": "unknown"},
    ),
    # A title that does not exist, with no diploma: nothing proves a qualification.
    (
        "in_service",
        "钱坤",
        {"title_certificate_no": "GD2019ZJ999999"},
        "referred",
        {"qualification_verified": "unknown", "age_within_cap": "unknown"},
    ),
    ("overseas_returnee", "唐糖", {"certification_no": "CSCSE-2025-GB-000321"}, "approved", {}),
    (
        "overseas_returnee",
        "叶青",
        {"certification_no": "CSCSE-2024-AU-000432"},
        "rejected",
        {"overseas_degree_certified": "fail"},
    ),
    (
        "overseas_returnee",
        "杜鹃",
        {"certification_no": "CSCSE-2025-US-000543"},
        "rejected",
        {"age_within_cap": "fail"},
    ),
    (
        "overseas_returnee",
        "夏雨",
        {"certification_no": "CSCSE-2025-DE-000654"},
        "referred",
        {"overseas_degree_certified": "unknown", "age_within_cap": "unknown"},
    ),
    ("postdoc", "萧博", {}, "approved", {}),
    ("postdoc", "田野", {}, "approved", {}),
    ("postdoc", "秦川", {}, "rejected", {"postdoc_station_record": "fail"}),
    ("postdoc", "魏来", {}, "rejected", {"postdoc_station_record": "fail"}),
    ("postdoc", "姚远", {}, "referred", {"postdoc_station_record": "unknown"}),
    ("postdoc", "白露", {}, "referred", {"doctorate_verified": "unknown"}),
]


@pytest.mark.parametrize(("business_type", "name", "claims", "verdict", "not_passed"), CASES)
async def test_persona_is_decided_as_the_policy_says(
    api: httpx.AsyncClient,
    make_key: Callable[..., dict[str, str]],
    business_type: str,
    name: str,
    claims: dict[str, str],
    verdict: str,
    not_passed: dict[str, str],
) -> None:
    body = {
        "business_type": business_type,
        "applicant": {"name": name, "id_number": BY_NAME[name]},
        "employer": {"uscc": EMPLOYER},
        "claims": claims,
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }
    response = await api.post("/v1/applications", json=body, headers=make_key())
    assert response.status_code == 201, response.text
    case = response.json()
    got = {c["id"]: c["result"] for c in case["decision"]["criteria"] if c["result"] != "pass"}
    assert (case["status"], got) == (verdict, not_passed)
    subsidy = {"overseas_returnee": [{"id": "living_subsidy", "amount_cny": 25000}]}
    expected = subsidy.get(business_type, []) if verdict == "approved" else []
    assert case["decision"]["entitlements"] == expected
    asked = {(e["registry"], e["query"]) for e in case["evidence"]}
    if business_type == "in_service" and "title_certificate_no" not in claims:
        assert ("hrss", "title") not in asked  # claims not made are not asked about
    if business_type == "postdoc":
        assert {("hrss", "postdoc"), ("education", "diplomas_of")} <= asked


async def test_in_service_needs_a_qualification_claim(api: httpx.AsyncClient, make_key) -> None:
    body = {
        "business_type": "in_service",
        "applicant": {"name": "陆远", "id_number": BY_NAME["陆远"]},
        "employer": {"uscc": EMPLOYER},
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }
    response = await api.post("/v1/applications", json=body, headers=make_key())
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "claims", "diploma_no"]


async def test_social_security_facts_explain_the_decision(api: httpx.AsyncClient, make_key) -> None:
    body = {
        "business_type": "in_service",
        "applicant": {"name": "林峰", "id_number": BY_NAME["林峰"]},
        "employer": {"uscc": EMPLOYER},
        "claims": {"diploma_no": "105581201906000002"},
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }
    case = (await api.post("/v1/applications", json=body, headers=make_key())).json()
    ss = next(c for c in case["decision"]["criteria"] if c["id"] == "social_security_with_employer")
    # Months paid to another employer do not count: 2026-07 to 2026-11 is five.
    assert ss["facts"]["contribution_run_months"] == 5
    assert ss["facts"]["months_since_last_contribution"] == 0
    assert ss["registries"] == ["social_security"]

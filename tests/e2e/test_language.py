"""The API speaks Chinese to a client that asks (Accept-Language: zh-CN): criterion
descriptions as the rule files word them, and problem titles; English stays the default."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import application

pytestmark = pytest.mark.anyio
HAN = re.compile(r"[\u4e00-\u9fff]")


async def test_a_case_is_described_in_chinese_when_asked_and_in_english_by_default(
    api: httpx.AsyncClient, make_key: Callable[..., dict[str, str]]
) -> None:
    hr = make_key()
    zh = {**hr, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    once = {**zh, "Idempotency-Key": "zh-1"}
    created = await api.post("/v1/applications", json=application(), headers=once)
    assert created.status_code == 201
    described = {c["id"]: c["description"] for c in created.json()["decision"]["criteria"]}
    assert all(HAN.search(d) for d in described.values()), described
    replayed = await api.post("/v1/applications", json=application(), headers=once)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    first = created.json()
    assert first.pop("access_code")
    assert replayed.json() == {**first, "access_code": None}  # the same words (the code: once)
    english = (await api.get(f"/v1/applications/{created.json()['case_id']}", headers=hr)).json()
    assert not any(HAN.search(c["description"]) for c in english["decision"]["criteria"])
    again = (await api.get(f"/v1/applications/{created.json()['case_id']}", headers=zh)).json()
    assert {c["id"]: c["description"] for c in again["decision"]["criteria"]} == described
    listed = (await api.get("/v1/applications", headers=zh)).json()["items"][0]
    assert {c["id"]: c["description"] for c in listed["decision"]["criteria"]} == described
    dry = (await api.post("/v1/evaluations", json=application(), headers=zh)).json()
    assert {c["id"]: c["description"] for c in dry["decision"]["criteria"]} == described


async def test_problems_are_titled_in_chinese_when_asked(
    api: httpx.AsyncClient, make_key: Callable[..., dict[str, str]]
) -> None:
    hr = make_key()
    missing = await api.get("/v1/applications/" + "0" * 32,
                            headers={**hr, "Accept-Language": "zh-CN"})  # fmt: skip
    assert (missing.status_code, missing.json()["title"]) == (404, "未找到")
    invalid = await api.post("/v1/applications", json={}, headers={**hr, "Accept-Language": "zh"})
    assert (invalid.status_code, invalid.json()["title"]) == (422, "请求内容无效")
    english = await api.get("/v1/applications/" + "0" * 32, headers=hr)
    assert english.json()["title"] == "Not found"

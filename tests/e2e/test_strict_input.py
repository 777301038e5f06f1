"""Input that a lax reading would coerce into another meaning is refused, naming the field.

Each case is one of the outside probe's findings (issue 31): declarations given as "yes" or 1
were read as consent and an approval number issued; invisible characters in a name passed,
then failed the police name match and rejected the applicant; a crafted cursor gave a 500.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from miaopi.records.paging import decode_cursor, encode_cursor
from miaopi.records.sealing import DataKey, generate_key
from tests.conftest import application

pytestmark = pytest.mark.anyio


def _loc(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    return [e["loc"] for e in answer.json()["errors"]]


@pytest.mark.parametrize("given", ["yes", 1, "true", "on", "t", "1"])
@pytest.mark.parametrize(("part", "field"), [("commitment", "accepted"), ("consent", "data_query")])
async def test_a_declaration_is_json_true_and_nothing_else(
    api: httpx.AsyncClient, make_key, part: str, field: str, given: object
) -> None:
    body = application()
    body[part] = {**body[part], field: given}  # type: ignore[dict-item]
    answer = await api.post("/v1/applications", json=body, headers=make_key())
    assert _loc(answer) == [["body", part, field]]
    listed = await api.get("/v1/applications", headers=make_key())
    assert listed.json()["items"] == []  # nothing decided, nothing recorded


@pytest.mark.parametrize("as_of", ["2026-11-22T00:00:00", "2026-11-22T00:00:00+08:00", 20261122])
async def test_a_date_time_or_a_number_is_not_a_date(
    api: httpx.AsyncClient, make_key, as_of: object
) -> None:
    answer = await api.post(
        "/v1/evaluations", json={**application(), "as_of": as_of}, headers=make_key()
    )
    assert _loc(answer) == [["body", "as_of"]]


async def test_identifiers_with_spaces_around_them_are_refused(
    api: httpx.AsyncClient, make_key
) -> None:
    body = application(id_number=" 420102200203151232 ")
    answer = await api.post("/v1/applications", json=body, headers=make_key())
    assert _loc(answer) == [["body", "applicant", "id_number"]]


@pytest.mark.parametrize("char", ["\u200b", "\ufeff", "\u200d", "\u202e", "\u00ad"])
async def test_an_invisible_character_in_a_name_is_refused_before_any_registry_is_asked(
    api: httpx.AsyncClient, make_key, char: str
) -> None:
    body = application(name=f"李{char}明")
    answer = await api.post("/v1/evaluations", json=body, headers=make_key())
    assert _loc(answer) == [["body", "applicant", "name"]]
    assert f"U+{ord(char):04X}" in answer.json()["errors"][0]["msg"]


async def test_a_name_in_decomposed_form_is_the_same_name(api: httpx.AsyncClient, make_key) -> None:
    # NFC: a name typed with a combining accent is the name the registry holds precomposed.
    answer = await api.post("/v1/evaluations", json=application(name="李明"), headers=make_key())
    assert answer.json()["decision"]["outcome"] == "approved"


async def test_a_key_given_twice_is_refused_not_read_as_its_last_value(
    api: httpx.AsyncClient, make_key
) -> None:
    text = json.dumps(application(), ensure_ascii=False)
    twice = text[:-1] + ', "consent": {"data_query": true}}'
    body = text.replace('"consent": {"data_query": true}', '"consent": {"data_query": false}')
    body = body[:-1] + ', "consent": {"data_query": true}}'
    for doubled in (twice, body):
        answer = await api.post(
            "/v1/applications",
            content=doubled.encode(),
            headers={**make_key(), "content-type": "application/json"},
        )
        assert _loc(answer) == [["body", "consent"]]


@pytest.mark.parametrize("charset", ["latin-1", "gbk", "utf-16"])
async def test_a_body_declared_in_another_charset_is_refused(
    api: httpx.AsyncClient, make_key, charset: str
) -> None:
    answer = await api.post(
        "/v1/applications",
        content=json.dumps(application(), ensure_ascii=charset == "latin-1").encode(charset),
        headers={**make_key(), "content-type": f"application/json; charset={charset}"},
    )
    assert answer.status_code == 415
    assert answer.json()["errors"][0]["loc"] == ["header", "content-type"]


async def test_a_body_that_is_not_utf8_is_refused(api: httpx.AsyncClient, make_key) -> None:
    answer = await api.post(
        "/v1/applications",
        content=json.dumps(application(), ensure_ascii=False).encode("utf-16"),
        headers={**make_key(), "content-type": "application/json"},
    )
    assert _loc(answer) == [["body"]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/v1/applications", "/v1/audit/tasks"])
@pytest.mark.parametrize(
    "cursor",
    [
        _b64(json.dumps({"s": 9223372036854775808}).encode()),  # the probe's: an int past BIGINT
        _b64(json.dumps({"s": 3}).encode()),  # the old, unsigned form
        encode_cursor(3, DataKey(generate_key())),  # signed, but by another service
        encode_cursor(2**63, DataKey(generate_key())),
        "garbage",
    ],
)
async def test_a_cursor_the_service_did_not_issue_is_refused(
    api: httpx.AsyncClient, make_key, path: str, cursor: str
) -> None:
    answer = await api.get(path, params={"cursor": cursor}, headers=make_key("admin"))
    assert _loc(answer) == [["query", "cursor"]]


async def test_an_issued_cursor_altered_by_one_character_is_refused(
    api: httpx.AsyncClient, make_key
) -> None:
    for _ in range(3):
        await api.post("/v1/applications", json=application(), headers=make_key())
    page = (await api.get("/v1/applications", params={"limit": 1}, headers=make_key())).json()
    issued = page["next_cursor"]
    assert (
        await api.get("/v1/applications", params={"cursor": issued}, headers=make_key())
    ).status_code == 200
    raw = bytearray(base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4)))
    raw[0] = ord("9") if raw[0] != ord("9") else ord("8")  # another position, same tag
    answer = await api.get(
        "/v1/applications", params={"cursor": _b64(bytes(raw))}, headers=make_key()
    )
    assert _loc(answer) == [["query", "cursor"]]


def test_every_cursor_the_service_issues_reads_back() -> None:
    # A tag is 12 random-looking bytes: one in twenty held the separator, and the service
    # refused its own cursor when it split at the last one.
    key = DataKey(generate_key())
    for seq in range(2000):
        assert decode_cursor(encode_cursor(seq, key), key) == seq


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/applications", {"GET", "POST"}),  # two routes share this path
        ("DELETE", "/v1/audit/tasks/t1", {"GET"}),
        ("OPTIONS", "/v1/evaluations", {"POST"}),
    ],
)
async def test_a_method_not_allowed_names_every_method_the_path_takes(
    api: httpx.AsyncClient, make_key, method: str, path: str, allowed: set[str]
) -> None:
    answer = await api.request(method, path, headers=make_key("admin"))
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert set(answer.headers["allow"].replace(" ", "").split(",")) - {"HEAD"} == allowed

"""The one-time notice (一次性告知, policy §9): the officer asks once for every document, the
clock stops until all have arrived, the submitter uploads them, and the decision rests on them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text, update

from miaopi.bootstrap import Container
from miaopi.records.ledger_verify import verify
from miaopi.records.tables import documents, reviews
from tests.conftest import Clock, application

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
SHANGHAI = ZoneInfo("Asia/Shanghai")
HE_WEI = {"id_number": "320106200102141117", "name": "何伟", "diploma_no": "102841202602000333"}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(17)
ITEMS = [
    {"criterion": "no_criminal_record", "description": "无犯罪记录证明 from the police station"},
    {"criterion": "no_criminal_record", "description": "the court's judgment on the offence"},
]


async def _in_review(
    api: httpx.AsyncClient, make_key: Keys
) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(case id, review URL, submitter's key, officer's key) of a referred case taken."""
    submitter = make_key()
    body = application(**HE_WEI)
    case = (await api.post("/v1/applications", json=body, headers=submitter)).json()
    assert case["status"] == "referred"
    officer = make_key("officer", district="440304")
    queue = (await api.get("/v1/reviews", headers=officer)).json()["items"]
    [review] = [r for r in queue if r["case_id"] == case["case_id"]]
    url = f"/v1/reviews/{review['review_id']}"
    assert (await api.post(f"{url}/claim", headers=officer)).status_code == 200
    return case["case_id"], url, submitter, officer


def _upload(
    api: httpx.AsyncClient,
    case_id: str,
    headers: dict[str, str],
    content: bytes,
    item: int | str = 0,
    name: str = "scan.pdf",
    media_type: str = "application/pdf",
) -> Any:
    return api.post(
        f"/v1/applications/{case_id}/documents",
        data={"item": str(item)},
        files={"file": (name, content, media_type)},
        headers=headers,
    )


async def test_the_notice_stops_the_clock_and_the_last_document_restarts_it(
    api: httpx.AsyncClient, make_key: Keys, clock: Clock, container: Container
) -> None:
    case_id, url, submitter, officer = await _in_review(api, make_key)
    # Referred on Sunday 22 November, due Friday the 27th; asked on Tuesday the 24th, with the
    # 25th, 26th and 27th left on the clock.
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    asked = await api.post(f"{url}/document-requests", json={"items": ITEMS}, headers=officer)
    assert asked.status_code == 201, asked.text
    review = asked.json()
    assert review["status"] == "awaiting_documents"
    assert review["due_date"] is None
    assert [i["description"] for i in review["document_request"]["items"]] == [
        i["description"] for i in ITEMS
    ]
    again = await api.post(f"{url}/document-requests", json={"items": ITEMS[:1]}, headers=officer)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/documents-requested")

    # Weeks may pass while the submitter gathers the papers: the review is not overdue.
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)  # a Monday
    assert (await api.get(url, headers=officer)).json()["overdue"] is False
    seen = (await api.get(f"/v1/applications/{case_id}", headers=submitter)).json()
    assert seen["review"]["status"] == "awaiting_documents"
    assert len(seen["review"]["document_request"]["items"]) == 2

    first = await _upload(api, case_id, submitter, PDF, item=0)
    assert first.status_code == 201, first.text
    assert first.json() | {"document_id": None} == {
        "document_id": None, "item": 0, "sha256": hashlib.sha256(PDF).hexdigest(),
        "media_type": "application/pdf", "size": len(PDF), "request_complete": False,
    }  # fmt: skip
    assert (await api.get(url, headers=officer)).json()["status"] == "awaiting_documents"
    # Named .pdf and sent as a PDF, but a PNG by its content: stored as what it is.
    second = await _upload(api, case_id, submitter, PNG, item=1, name="judgment.pdf")
    assert second.status_code == 201, second.text
    assert second.json()["media_type"] == "image/png"
    assert second.json()["request_complete"] is True

    review = (await api.get(url, headers=officer)).json()
    assert review["status"] == "in_review"
    assert review["due_date"] == "2026-12-10"  # three working days after the 7th
    assert review["document_request"]["answered"] == [0, 1]

    listed = (await api.get(f"/v1/applications/{case_id}/documents", headers=officer)).json()
    assert [(d["item"], d["media_type"]) for d in listed["items"]] == [
        (0, "application/pdf"), (1, "image/png"),
    ]  # fmt: skip
    read = await api.get(
        f"/v1/applications/{case_id}/documents/{first.json()['document_id']}", headers=officer
    )
    assert read.status_code == 200
    assert read.content == PDF
    assert read.headers["content-type"] == "application/pdf"
    assert read.headers["cache-control"] == "no-store"

    resolution = {"criterion": "no_criminal_record", "result": "pass", "basis": "document",
                  "document_id": first.json()["document_id"]}  # fmt: skip
    decided = await api.post(
        f"{url}/decision",
        json={"outcome": "approved", "reason": "spent", "resolutions": [resolution]},
        headers=officer,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["outcome"] == "approved"

    # The decision's ledger entry hashes every document's SHA-256: change one, and the chain
    # no longer verifies at that entry.
    verdict = verify(container.database.engine)
    assert verdict.intact, verdict
    engine = container.database.engine
    with engine.connect() as conn:
        recorded = conn.execute(select(reviews.c.documents)).scalar_one()
    digests = {hashlib.sha256(PDF).hexdigest(), hashlib.sha256(PNG).hexdigest()}
    assert {d["sha256"] for d in recorded} == digests
    # A document swapped afterwards, even sealed with the right key, no longer hashes as the
    # decision recorded it.
    first_id = first.json()["document_id"]
    with engine.begin() as conn:
        conn.execute(update(documents).where(documents.c.id == first_id).values(content=PNG))
    swapped = verify(engine)
    assert not swapped.intact
    assert f"document {first_id} was changed" in swapped.reason
    with engine.begin() as conn:
        conn.execute(update(documents).where(documents.c.id == first_id).values(content=PDF))
    assert verify(engine).intact
    recorded[0]["sha256"] = hashlib.sha256(b"another scan").hexdigest()
    with engine.begin() as conn:
        conn.execute(update(reviews).values(documents=recorded))
    broken = verify(engine)
    assert not broken.intact
    assert broken.case_id == case_id


async def test_a_document_is_checked_by_its_content_and_its_size(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    case_id, url, submitter, officer = await _in_review(api, make_key)
    early = await _upload(api, case_id, submitter, PDF)
    assert early.status_code == 409  # nothing asked for yet
    await api.post(f"{url}/document-requests", json={"items": ITEMS[:1]}, headers=officer)

    text = await _upload(api, case_id, submitter, b"just text, named .pdf", name="x.pdf")
    assert text.status_code == 415
    assert text.headers["content-type"] == "application/problem+json"
    assert text.json()["errors"][0]["loc"] == ["body", "file"]

    limit = container.settings.max_document_bytes
    too_large = await _upload(api, case_id, submitter, PDF + bytes(limit))
    assert too_large.status_code == 413
    assert too_large.headers["content-type"] == "application/problem+json"
    assert too_large.json()["errors"][0]["loc"] == ["body", "file"]

    no_item = await _upload(api, case_id, submitter, PDF, item=5)
    assert no_item.status_code == 422
    assert no_item.json()["errors"][0]["loc"] == ["body", "item"]
    not_a_number = await _upload(api, case_id, submitter, PDF, item="first")
    assert not_a_number.json()["errors"][0]["loc"] == ["body", "item"]
    as_json = await api.post(
        f"/v1/applications/{case_id}/documents", json={"item": 0}, headers=submitter
    )
    assert as_json.status_code == 415

    stranger = make_key(uscc="91440300MA5G0TEST0")
    assert (await _upload(api, case_id, stranger, PDF)).status_code == 404
    # Nothing of the refused uploads was kept, and the clock still waits.
    listed = (await api.get(f"/v1/applications/{case_id}/documents", headers=officer)).json()
    assert listed["items"] == []
    assert (await api.get(url, headers=officer)).json()["status"] == "awaiting_documents"


async def test_documents_are_read_by_the_reviewing_officer_and_the_admin_and_sealed_at_rest(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    case_id, url, submitter, officer = await _in_review(api, make_key)
    await api.post(f"{url}/document-requests", json={"items": ITEMS[:1]}, headers=officer)
    document_id = (await _upload(api, case_id, submitter, PDF)).json()["document_id"]
    path = f"/v1/applications/{case_id}/documents/{document_id}"

    assert (await api.get(path, headers=officer)).content == PDF
    assert (await api.get(path, headers=make_key("admin", uscc=None))).content == PDF
    assert (await api.get(path, headers=submitter)).status_code == 403
    other_officer = make_key("officer", district="440306")
    assert (await api.get(path, headers=other_officer)).status_code == 404
    auditor = make_key("auditor", uscc=None, district="440306")
    assert (await api.get(path, headers=auditor)).status_code == 404

    with container.database.engine.connect() as conn:
        stored = bytes(conn.execute(text("SELECT content FROM documents")).scalar_one())
    assert b"%PDF" not in stored
    assert len(stored) > len(PDF)  # sealed: a nonce and a tag more than the document

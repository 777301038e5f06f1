"""The one-time notice and the documents that answer it (policy.md §9, 一次性告知).

The holder of a review asks once for every item it needs, each tied to a criterion the review
must resolve; the review's clock stops until every item has a document. The case's submitter
uploads them: PDF, JPEG or PNG, the type told by the content's own signature, never by the
file's name or the header the client sent. The officer holding the review, the auditors of the
case and the admin may read them; no one else learns they exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from miaopi.eligibility.calendar import CalendarError, WorkingCalendar
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.records.documents import AlreadyRequested, NoSuchItem, NothingRequested, Upload
from miaopi.records.reviews import ReviewClosed, ReviewNotFound, ReviewNotHeld
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    UnsupportedDocument,
)
from miaopi.usecases.reviews import find_review, to_resolve
from miaopi.usecases.unit_of_work import UnitOfWork

_ALL = Scope("all")  # the officer holds the review: its case is theirs to see

# The signatures the formats' own specifications put first in every file: PDF 1.7 / ISO 32000
# §7.5.2 (a header "%PDF-"), JPEG / ISO 10918-1 (SOI, then a marker), PNG / ISO 15948 §5.2
# (the eight-byte signature, then the IHDR chunk).
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "application/pdf"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 0, "image/png"),
)


def media_type_of(content: bytes) -> str | None:
    """The document's type from its first bytes, or None if it is none the counter takes."""
    for signature, at, media_type in _SIGNATURES:
        if content[at : at + len(signature)] == signature:
            return media_type
    return None


@dataclass(frozen=True, slots=True)
class Item:
    criterion: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "description": self.description}


async def request_documents(
    review_id: str,
    items: list[Item],
    officer: Client,
    *,
    uow: UnitOfWork,
    calendar: WorkingCalendar,
    now: datetime,
) -> Any:
    """Give the review's one-time notice; the review as it then stands."""
    review = await find_review(uow, review_id)
    if review.officer_id != officer.id:
        raise Forbidden("only the officer who took this review asks for documents")
    case = await uow.case(review.case_id, _ALL)
    if case is None:  # pragma: no cover - a review's case is kept with it (a foreign key)
        raise NotFound("review not found")
    open_, _ = to_resolve(case.decision["criteria"])
    for i, item in enumerate(items):
        if item.criterion not in open_:
            raise InvalidInput(
                ["body", "items", i, "criterion"],
                "each item is tied to a criterion the review resolves "
                f"(unknown or failed in refer mode): {sorted(open_)}",
            )
    today = today_in_shanghai(now)
    try:
        await uow.request_documents(
            review_id=review_id,
            officer_id=officer.id,
            items=[item.to_json() for item in items],
            days_left=lambda due: calendar.working_days_left(today, due),
            now=now,
        )
    except AlreadyRequested:
        raise Conflict(
            "documents-requested",
            "the one-time notice was given already: every item belongs in that one request",
        ) from None
    except ReviewClosed:
        raise Conflict("review-closed", "this review is decided already") from None
    except ReviewNotHeld:
        raise Forbidden("only the officer who took this review asks for documents") from None
    return await find_review(uow, review_id)


@dataclass(frozen=True, slots=True)
class Stored:
    document_id: str
    sha256: str
    media_type: str
    size: int
    complete: bool


async def upload_document(
    case_id: str,
    item: int,
    content: bytes,
    client: Client,
    *,
    uow: UnitOfWork,
    calendar: WorkingCalendar,
    now: datetime,
) -> Stored:
    """Store a document the case's submitter uploads for an item of its request."""
    await case_in_scope(uow, client, case_id)
    media_type = media_type_of(content)
    if media_type is None:
        raise UnsupportedDocument("a document must be a PDF, JPEG or PNG file, by its content")
    sha256 = hashlib.sha256(content).hexdigest()
    today = today_in_shanghai(now)

    def due_after(days_left: int) -> date | None:
        try:
            return calendar.add_working_days(today, days_left)
        except CalendarError:
            return None  # beyond the calendar: flagged like a referral it does not reach

    try:
        document_id, complete = await uow.upload_document(
            Upload(case_id, item, media_type, sha256, content, client.id),
            due_after=due_after,
            now=now,
        )
    except (ReviewNotFound, NothingRequested):
        raise Conflict("no-document-request", "no documents were asked for this case") from None
    except ReviewClosed:
        raise Conflict("review-closed", "the case's review is decided already") from None
    except NoSuchItem:
        raise InvalidInput(["body", "item"], "the request has no item of that index") from None
    return Stored(document_id, sha256, media_type, len(content), complete)


async def readable_case(uow: UnitOfWork, client: Client, case_id: str) -> None:
    """``NotFound`` unless the client may read the case's documents (see the module)."""
    if client.role == "admin":
        return
    if client.role == "officer":
        review = await uow.review_of_case(case_id)
        if review is None or review.officer_id != client.id:
            raise NotFound("case not found")
        return
    await case_in_scope(uow, client, case_id)  # an auditor: the cases of their own tasks


async def documents_of(uow: UnitOfWork, client: Client, case_id: str) -> list[Any]:
    await readable_case(uow, client, case_id)
    return await uow.documents(case_id)


async def document(uow: UnitOfWork, client: Client, case_id: str, document_id: str) -> Any:
    await readable_case(uow, client, case_id)
    found = await uow.document(case_id, document_id)
    if found is None:
        raise NotFound("document not found")
    return found


async def answered_items(uow: UnitOfWork, review: Any) -> list[int]:
    """The items of the review's one-time notice a document was uploaded for."""
    if review.document_request is None:
        return []
    return [d.item for d in await uow.documents(review.case_id)]

"""The one-time notice (一次性告知) and the documents that answer it (policy.md §9).

An officer asks once, every item in one request; the review then waits for documents with its
clock stopped, keeping the working days it had left. The upload that completes the request
restarts the clock: the review is due that many working days later. Each write is one
transaction with the review row locked, so two uploads cannot both restart the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from miaopi.records import events
from miaopi.records.engines import reading
from miaopi.records.paging import new_id
from miaopi.records.reviews import ReviewClosed, ReviewNotFound, ReviewNotHeld
from miaopi.records.tables import documents, reviews
from miaopi.records.writing import writing
from miaopi.supervision.queue import add_event


class AlreadyRequested(Exception):
    """The review's one-time notice was given already: there is no second."""


class NothingRequested(Exception):
    """The case's review asks for no documents (none requested, or no review at all)."""


class NoSuchItem(Exception):
    """The request has no item of that index."""


@dataclass(frozen=True, slots=True)
class Upload:
    case_id: str
    item: int
    media_type: str
    sha256: str
    content: bytes
    client_id: int


def request(
    engine: Engine,
    *,
    review_id: str,
    officer_id: int,
    items: list[dict[str, Any]],
    days_left: Callable[[date], int],
    now: datetime,
) -> None:
    """Give the one-time notice and stop the review's clock, keeping ``days_left(due)``."""
    with writing(engine) as conn:
        row = _locked(conn, reviews.c.id == review_id, review_id)
        if row.status == "closed":
            raise ReviewClosed(review_id)
        if row.officer_id != officer_id:
            raise ReviewNotHeld(review_id)
        if row.documents_requested_at is not None:
            raise AlreadyRequested(review_id)
        conn.execute(
            update(reviews)
            .where(reviews.c.id == review_id)
            .values(
                status="awaiting_documents",
                document_request=items,
                documents_requested_at=now,
                days_left=None if row.due_date is None else days_left(row.due_date),
                due_date=None,
            )
        )
        add_event(conn, row.case_id, now, "documents_requested", "referred", officer_id,
                  {"review_id": review_id, "items": len(items)})  # fmt: skip
        # The items' descriptions may name the applicant's papers: the event says how many
        # and for which criteria; the case shows them.
        events.to_submitter(
            conn, "case.documents_requested", row.case_id, status="referred", at=now,
            review_id=review_id, criteria=[i["criterion"] for i in items],
        )  # fmt: skip


def upload(
    engine: Engine,
    upload: Upload,
    *,
    due_after: Callable[[int], date | None],
    now: datetime,
) -> tuple[str, bool]:
    """Store a document for an item of the case's request: (its id, whether it completed the
    request). The upload that completes it restarts the clock: due ``due_after(days_left)``."""
    with writing(engine) as conn:
        row = _locked(conn, reviews.c.case_id == upload.case_id, upload.case_id)
        if row.status == "closed":
            raise ReviewClosed(row.id)
        if row.document_request is None:
            raise NothingRequested(upload.case_id)
        if not 0 <= upload.item < len(row.document_request):
            raise NoSuchItem(upload.item)
        document_id = new_id()
        conn.execute(
            insert(documents).values(
                id=document_id,
                case_id=upload.case_id,
                review_id=row.id,
                item=upload.item,
                media_type=upload.media_type,
                size=len(upload.content),
                sha256=upload.sha256,
                content=upload.content,
                uploaded_by=upload.client_id,
                uploaded_at=now,
            )
        )
        answered = conn.execute(
            select(func.count(func.distinct(documents.c.item))).where(
                documents.c.review_id == row.id
            )
        ).scalar_one()
        complete = row.status == "awaiting_documents" and answered == len(row.document_request)
        if complete:
            conn.execute(
                update(reviews)
                .where(reviews.c.id == row.id)
                .values(
                    status="in_review",
                    due_date=None if row.days_left is None else due_after(row.days_left),
                )
            )
        add_event(conn, upload.case_id, now, "document_uploaded", "referred", upload.client_id,
                  {"document_id": document_id, "item": upload.item,
                   "complete": complete})  # fmt: skip
        return document_id, complete


def _locked(conn: Connection, where: Any, name: str) -> Row[Any]:
    row = conn.execute(select(reviews).where(where).with_for_update()).first()
    if row is None:
        raise ReviewNotFound(name)
    return row


_LISTED = (
    documents.c.id, documents.c.case_id, documents.c.review_id, documents.c.item,
    documents.c.media_type, documents.c.size, documents.c.sha256, documents.c.uploaded_at,
)  # fmt: skip


def of_case(engine: Engine, case_id: str) -> list[Row[Any]]:
    """The case's documents, without their content, in the order they came."""
    with reading(engine) as conn:
        query = select(*_LISTED).where(documents.c.case_id == case_id).order_by(documents.c.seq)
        return list(conn.execute(query))


def content(engine: Engine, case_id: str, document_id: str) -> Any | None:
    """A document with its content opened (``SealBroken`` if it was changed)."""
    with reading(engine) as conn:
        return conn.execute(
            select(*_LISTED, documents.c.content).where(
                documents.c.case_id == case_id, documents.c.id == document_id
            )
        ).first()

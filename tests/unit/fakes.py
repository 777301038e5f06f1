"""Fakes of miaopi's own ports, so the use cases are tested without a database.

Registries are not faked here: the tests ask the mock registries over HTTP, as elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from miaopi.evidence.ports import Evidence, RevocationRegister
from miaopi.records.cases import IdempotencyRace, NewCase, Scope
from miaopi.records.documents import AlreadyRequested, NoSuchItem, NothingRequested, Upload
from miaopi.records.ledger import DOCUMENTS
from miaopi.records.reviews import ReviewClosed, ReviewNotFound, ReviewNotHeld, ReviewTaken
from miaopi.supervision.tasks import TaskClosed, TaskNotFound
from miaopi.usecases.unit_of_work import UnitOfWork


class FakeUnitOfWork(UnitOfWork):
    """Cases, idempotency claims and logged queries in memory; each call all or nothing."""

    def __init__(self) -> None:
        self.cases: dict[str, SimpleNamespace] = {}
        self.claims: dict[tuple[int, str], tuple[str, str]] = {}
        self.logged: list[dict[str, Any]] = []
        self.closed: dict[str, dict[str, Any]] = {}
        self.tasks: set[str] = set()
        self.definitions: dict[str, dict[str, Any]] = {}
        self.numbers = 0
        self.review_rows: dict[str, SimpleNamespace] = {}
        self.document_rows: list[SimpleNamespace] = []
        self.tries: list[SimpleNamespace] = []  # scheduled only: they run on the database
        # Runs inside ``record`` before it claims the key: a concurrent request's commit.
        self.before_claim: Callable[[], None] | None = None

    def body_hash(self, canonical_body: bytes) -> str:
        return hashlib.sha256(b"key|" + canonical_body).hexdigest()

    async def find_idempotent(self, client_id: int, key: str) -> tuple[str, str] | None:
        return self.claims.get((client_id, key))

    async def record(
        self, new: NewCase, city_prefix: str, idempotency: tuple[int, str, str] | None
    ) -> Any:
        if self.before_claim is not None:
            self.before_claim()
            self.before_claim = None
        if idempotency is not None and idempotency[:2] in self.claims:
            raise IdempotencyRace
        row = SimpleNamespace(
            **{**new.row, **{name: getattr(new, name) for name in DOCUMENTS}},
            revoked_at=None,
            revocation_reason=None,
        )
        if new.status == "approved":
            self.numbers += 1
            row.approval_number = f"{city_prefix}-{new.application_date.year}-{self.numbers:06d}"
        self.cases[row.id] = row
        self.definitions.setdefault(new.ruleset_fingerprint, new.ruleset_definition)
        if idempotency is not None:
            client_id, key, body_hash = idempotency
            self.claims[(client_id, key)] = (body_hash, row.id)
        self.logged += [{**e, "purpose": "decision", "case_id": row.id} for e in new.evidence]
        if new.status == "referred" and new.second_try_at is not None:
            self.tries.append(SimpleNamespace(
                case_id=row.id, attempt=1, status="scheduled", due_at=new.second_try_at,
            ))  # fmt: skip
        elif new.status == "referred":
            review_id = f"r{len(self.review_rows) + 1}"
            self.review_rows[review_id] = SimpleNamespace(
                id=review_id, case_id=row.id, status="waiting", officer_id=None,
                due_date=new.review_due, employer_region=new.employer_region, outcome=None,
                approval_number=None, resolutions=None, reason=None, entitlements=None,
                document_request=None, days_left=None,
            )  # fmt: skip
        return row

    async def case(self, case_id: str, scope: Scope) -> Any | None:
        row = self.cases.get(case_id)
        if row is None or scope.kind == "all":
            return row
        if scope.kind == "employer":
            return row if row.employer_uscc == scope.value else None
        if scope.kind == "submitted_by":
            return row if row.submitted_by == scope.value else None
        return None  # an auditor's tasks: none in this fake

    async def log_queries(self, evidence: list[dict[str, Any]], purpose: str, **who: Any) -> None:
        self.logged += [{**e, "purpose": purpose, **who} for e in evidence]

    async def close_task(self, **closure: Any) -> None:
        task_id = closure["task_id"]
        if task_id not in self.tasks:
            raise TaskNotFound(task_id)
        if task_id in self.closed:
            raise TaskClosed(task_id)
        self.closed[task_id] = closure

    async def reviews(
        self, limit: int, cursor: str | None, status: str | None, overdue: bool | None, today: date
    ) -> tuple[list[Any], str | None]:
        rows = [r for r in self.review_rows.values() if status in (None, r.status)]
        return list(reversed(rows))[:limit], None

    async def review(self, review_id: str) -> Any | None:
        return self.review_rows.get(review_id)

    async def review_of_case(self, case_id: str) -> Any | None:
        return next((r for r in self.review_rows.values() if r.case_id == case_id), None)

    async def claim_review(self, **claim: Any) -> None:
        review = self.review_rows.get(claim["review_id"])
        if review is None:
            raise ReviewNotFound(claim["review_id"])
        if review.status == "closed":
            raise ReviewClosed(review.id)
        if review.officer_id not in (None, claim["officer_id"]):
            raise ReviewTaken(review.id)
        review.status, review.officer_id = "in_review", claim["officer_id"]

    async def decide_review(self, **decision: Any) -> None:
        review = self.review_rows[decision["review_id"]]
        if review.status == "closed":
            raise ReviewClosed(review.id)
        if review.officer_id != decision["officer_id"]:
            raise ReviewNotHeld(review.id)
        review.status, review.outcome = "closed", decision["outcome"]
        review.resolutions, review.reason = decision["resolutions"], decision["reason"]
        review.entitlements = decision["entitlements"]
        if decision["outcome"] == "approved":
            self.numbers += 1
            review.approval_number = (
                f"{decision['city_prefix']}-{decision['today'].year}-{self.numbers:06d}"
            )
        self.cases[review.case_id].status = decision["outcome"]

    async def second_tries(self, case_id: str) -> list[Any]:
        return [t for t in self.tries if t.case_id == case_id]

    async def request_documents(self, **request: Any) -> None:
        review = self.review_rows[request["review_id"]]
        if review.status == "closed":
            raise ReviewClosed(review.id)
        if review.officer_id != request["officer_id"]:
            raise ReviewNotHeld(review.id)
        if review.document_request is not None:
            raise AlreadyRequested(review.id)
        review.days_left = request["days_left"](review.due_date)
        review.status, review.due_date = "awaiting_documents", None
        review.document_request = request["items"]

    async def upload_document(self, upload: Upload, **when: Any) -> tuple[str, bool]:
        review = next((r for r in self.review_rows.values() if r.case_id == upload.case_id), None)
        if review is None or review.document_request is None:
            raise NothingRequested(upload.case_id)
        if review.status == "closed":
            raise ReviewClosed(review.id)
        if not 0 <= upload.item < len(review.document_request):
            raise NoSuchItem(upload.item)
        document_id = f"{len(self.document_rows) + 1:032x}"
        self.document_rows.append(SimpleNamespace(
            id=document_id, case_id=upload.case_id, review_id=review.id, item=upload.item,
            media_type=upload.media_type, size=len(upload.content), sha256=upload.sha256,
            content=upload.content, uploaded_at=when["now"],
        ))  # fmt: skip
        answered = {d.item for d in self.document_rows if d.review_id == review.id}
        complete = review.status == "awaiting_documents" and len(answered) == len(
            review.document_request
        )
        if complete:
            review.status, review.due_date = "in_review", when["due_after"](review.days_left)
        return document_id, complete

    async def documents(self, case_id: str) -> list[Any]:
        return [d for d in self.document_rows if d.case_id == case_id]

    async def document(self, case_id: str, document_id: str) -> Any | None:
        found = [d for d in self.document_rows if (d.case_id, d.id) == (case_id, document_id)]
        return found[0] if found else None

    async def ruleset_definition(self, fingerprint: str) -> dict[str, Any] | None:
        return self.definitions.get(fingerprint)


class NoBars(RevocationRegister):
    """This city's own records, holding no fraud bar and no approval."""

    async def bars_of(self, id_number: str) -> Evidence:
        record: dict[str, list[Any]] = {"fraud_bars": [], "approvals": []}
        return Evidence("revocations", "bars_of", "ok", datetime.now(UTC), 0.0, record=record)

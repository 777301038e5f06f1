"""Bodies of the counter review's endpoints, and the review as a case shows it (policy §9)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from miaopi.api.fields import InputModel, Printable
from miaopi.domain import CaseStatus
from miaopi.usecases.documents import Item
from miaopi.usecases.reviews import Resolution, ReviewDecision


class EntitlementOut(BaseModel):
    id: str
    amount_cny: int | None = None


class ResolutionOut(BaseModel):
    criterion: str
    result: Literal["pass", "fail"]
    basis: Literal["document", "registry", "note"]
    document_id: str | None = None
    note: str | None = None


class DocumentItemOut(BaseModel):
    criterion: str
    description: str


class DocumentRequestOut(BaseModel):
    """The one-time notice: every item asked for, each answered by an upload (its index)."""

    items: list[DocumentItemOut]
    requested_at: datetime
    answered: list[int] = Field(description="Indexes of the items a document was uploaded for")


class CaseReviewOut(BaseModel):
    """A referred case's counter review, as the case shows it (policy §9)."""

    review_id: str
    status: Literal["waiting", "in_review", "awaiting_documents", "closed"]
    due_date: date | None
    overdue: bool
    officer: str | None = None
    outcome: Literal["approved", "rejected"] | None = None
    reason: str | None = None
    resolutions: list[ResolutionOut] | None = None
    decided_at: datetime | None = None
    document_request: DocumentRequestOut | None = None


class ResolutionIn(InputModel):
    criterion: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    result: Literal["pass", "fail"]
    basis: Literal["document", "registry", "note"]
    document_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    note: Printable | None = Field(default=None, max_length=2000)


class ReviewDecisionIn(InputModel):
    outcome: Literal["approved", "rejected"]
    reason: Printable | None = Field(default=None, max_length=2000)
    resolutions: list[ResolutionIn] = Field(max_length=50)

    def decision(self) -> ReviewDecision:
        return ReviewDecision(
            outcome=self.outcome,
            reason=self.reason,
            resolutions=tuple(
                Resolution(r.criterion, r.result, r.basis, r.document_id, r.note)
                for r in self.resolutions
            ),
        )


class DocumentItemIn(InputModel):
    criterion: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    description: Printable = Field(min_length=1, max_length=500)


class DocumentRequestIn(InputModel):
    """The one-time notice (一次性告知): every item needed, in this one request."""

    items: list[DocumentItemIn] = Field(min_length=1, max_length=20)

    def wanted(self) -> list[Item]:
        return [Item(i.criterion, i.description) for i in self.items]


class DocumentOut(BaseModel):
    document_id: str
    item: int
    sha256: str
    media_type: Literal["application/pdf", "image/jpeg", "image/png"]
    size: int
    uploaded_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentOut]


class UploadedOut(BaseModel):
    document_id: str
    item: int
    sha256: str
    media_type: Literal["application/pdf", "image/jpeg", "image/png"]
    size: int
    request_complete: bool = Field(
        description="Every item now has a document: the review's clock runs again"
    )


class ReviewCaseOut(BaseModel):
    case_id: str
    status: CaseStatus
    business_type: str
    employer_uscc: str
    employer_name: str | None


class ReviewOut(BaseModel):
    review_id: str
    case_id: str
    status: Literal["waiting", "in_review", "awaiting_documents", "closed"]
    referred_on: date
    due_date: date | None
    overdue: bool
    officer: str | None = None
    claimed_at: datetime | None = None
    outcome: Literal["approved", "rejected"] | None = None
    approval_number: str | None = None
    reason: str | None = None
    resolutions: list[ResolutionOut] | None = None
    entitlements: list[EntitlementOut] | None = None
    decided_at: datetime | None = None
    document_request: DocumentRequestOut | None = None
    case: ReviewCaseOut


class ReviewList(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None

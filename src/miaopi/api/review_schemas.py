"""Bodies of the counter review's endpoints (policy §9)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from miaopi.api.fields import InputModel, Printable
from miaopi.api.schemas import EntitlementOut, ResolutionOut
from miaopi.domain import CaseStatus


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
    case: ReviewCaseOut


class ReviewList(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None

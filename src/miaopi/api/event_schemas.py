"""Bodies of the events feed and the webhook endpoints (policy §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from miaopi.api.fields import InputModel

EventType = Literal[
    "case.decided",
    "case.referred",
    "case.documents_requested",
    "case.reviewed",
    "case.revoked",
    "case.certificate_issued",
    "case.stage_reached",
    "batch.completed",
]


class EndpointIn(InputModel):
    url: str = Field(min_length=8, max_length=2000, description="https://…; see the guide")
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, description="The types to send; none given: every type"
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[EventType] | None
    active: bool
    disabled_reason: str | None = Field(
        default=None, description="Why it was disabled: its deliveries kept failing"
    )
    created_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_…), shown this once")


class EndpointList(BaseModel):
    items: list[EndpointOut]


class AttemptOut(BaseModel):
    event_id: str
    type: EventType
    delivery_id: str
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's answer, if one came")
    error: str | None
    duration_ms: float
    delivery_status: Literal["pending", "succeeded", "failed", "cancelled"]
    next_attempt_at: datetime | None


class AttemptList(BaseModel):
    items: list[AttemptOut]
    next_cursor: str | None


class EventOut(BaseModel):
    event_id: str
    type: EventType
    case_id: str | None
    batch_id: str | None = None
    occurred_at: datetime
    data: dict[str, Any]


class EventList(BaseModel):
    items: list[EventOut]
    next_cursor: str = Field(description="Pass as `after` to read on; the same when none came")


class RedeliveredOut(BaseModel):
    deliveries: int = Field(description="How many endpoints it is sent to again")

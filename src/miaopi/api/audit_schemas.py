"""Audit bodies: tasks, findings, objections and a month's spot-check draw (policy §8, §11)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from miaopi.api.fields import BusinessTypeName, InputModel
from miaopi.api.schemas import CaseOut, EmployerOut, EvidenceOut
from miaopi.domain import CaseStatus, CriterionResult
from miaopi.usecases.close_task import Findings

Check = Literal["ok", "issue"]
TaskKind = Literal["spot_check", "recheck", "objection"]
TaskStatus = Literal["unassigned", "open", "closed"]
TaskOutcome = Literal["confirmed", "revoked"]


class FindingsIn(InputModel):
    completeness: Check = Field(description="完整性: the case holds every required record")
    consistency: Check = Field(description="一致性: the records agree with each other")
    compliance: Check = Field(description="合规性: the decision follows the rules in force")
    notes: str = Field(default="", max_length=4000)
    outcome: TaskOutcome
    reason: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Required for `revoked`"
    )

    def findings(self) -> Findings:
        checks = self.model_dump(include={"completeness", "consistency", "compliance", "notes"})
        return Findings(checks=checks, outcome=self.outcome, reason=self.reason)


class FindingsOut(BaseModel):
    completeness: Check
    consistency: Check
    compliance: Check
    notes: str


class AuditorOut(BaseModel):
    name: str
    district: str | None


class DiscrepancyOut(BaseModel):
    criterion: str
    recorded: CriterionResult
    rechecked: CriterionResult
    registries: list[str]


class TaskCaseSummary(BaseModel):
    business_type: BusinessTypeName
    status: CaseStatus
    approval_number: str | None
    employer: EmployerOut
    approved_at: datetime


class TaskOut(BaseModel):
    task_id: str
    case_id: str
    kind: TaskKind
    status: TaskStatus
    due_date: date = Field(description="90 days after the approval (rule parameter)")
    overdue: bool
    created_at: datetime
    assigned_at: datetime | None
    auditor: AuditorOut | None
    period: str | None = Field(description="YYYY-MM of the spot-check draw")
    discrepancy: list[DiscrepancyOut] | None = Field(
        description="Re-checks: the criteria that passed and no longer pass"
    )
    findings: FindingsOut | None
    outcome: TaskOutcome | None
    reason: str | None
    closed_at: datetime | None
    case: TaskCaseSummary


class TaskList(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class EvidenceRecordOut(EvidenceOut):
    record: dict[str, Any] | None = Field(description="The registry's answer, when ok")
    detail: str | None


class CaseEventOut(BaseModel):
    at: datetime
    event: str
    status: CaseStatus
    detail: dict[str, Any]


class AuditedCaseOut(CaseOut):
    evidence: list[EvidenceRecordOut]  # type: ignore[assignment]
    history: list[CaseEventOut]


class ObjectionOut(BaseModel):
    objection_id: str
    reason: str
    received_at: datetime


class TaskDetail(TaskOut):
    case: AuditedCaseOut  # type: ignore[assignment]
    objections: list[ObjectionOut] | None = Field(
        default=None, description="An objection task: what the public said, oldest first"
    )


class DrawOut(BaseModel):
    case_id: str
    risk_class: str | None
    rate: str = Field(description="Exact decimal the draw compared against")
    selected: bool


class RateOut(BaseModel):
    risk_class: str | None
    rate: str


class PeriodOut(BaseModel):
    period: str
    ended: bool
    seed: str | None = Field(description="Hex; published once the period has ended")
    seed_sha256: str | None = Field(description="SHA-256 of the seed bytes, shown from the start")
    rates: list[RateOut]
    approvals: int
    selected: list[str] = Field(description="Case ids drawn for a spot check")
    draws: list[DrawOut] = Field(description="Every approval of the period and its draw")

"""Request and response bodies. Requests are strict: unknown fields are errors."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    field_validator,
)

from miaopi.api.fields import (
    BusinessTypeName,
    CertificateNo,
    InputModel,
    IsoDate,
    Printable,
    StrictCreditCode,
    StrictResidentId,
)
from miaopi.api.review_schemas import CaseReviewOut, EntitlementOut
from miaopi.domain import CaseStatus, CriterionResult, OnFail, Outcome


class ApplicantIn(InputModel):
    name: Printable = Field(min_length=1, max_length=50, examples=["张三"])
    id_number: StrictResidentId = Field(examples=["440304199901011239"])


class EmployerIn(InputModel):
    uscc: StrictCreditCode = Field(examples=["91440304591234561Q"])


class ClaimsIn(InputModel):
    diploma_no: CertificateNo | None = None
    title_certificate_no: CertificateNo | None = None
    certification_no: CertificateNo | None = None


class CommitmentIn(InputModel):
    # A legal declaration: only JSON true counts ("yes", 1 or "true" is invalid input).
    # Documented as `const: true`; the validator keeps the message an applicant can act on.
    accepted: StrictBool = Field(json_schema_extra={"const": True})
    version: Printable = Field(min_length=1, max_length=32)

    @field_validator("accepted")
    @classmethod
    def _accepted(cls, v: bool) -> bool:
        if not v:
            raise ValueError("the applicant must accept the commitment (告知承诺)")
        return v


class ConsentIn(InputModel):
    data_query: StrictBool = Field(json_schema_extra={"const": True})

    @field_validator("data_query")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if not v:
            raise ValueError("the applicant must consent to the data queries (授权查询)")
        return v


class ApplicationIn(InputModel):
    business_type: BusinessTypeName
    applicant: ApplicantIn
    employer: EmployerIn
    claims: ClaimsIn = Field(default_factory=ClaimsIn)
    commitment: CommitmentIn
    consent: ConsentIn


class EvaluationIn(ApplicationIn):
    as_of: IsoDate | None = Field(
        default=None, description="Decide as if on this date (Asia/Shanghai); default today"
    )


class CriterionOut(BaseModel):
    id: str
    result: CriterionResult
    on_fail: OnFail
    description: str
    reference: str
    facts: dict[str, Any]
    registries: list[str]


class RulesetRef(BaseModel):
    business_type: BusinessTypeName
    version: str
    fingerprint: str


class DecisionOut(BaseModel):
    outcome: Outcome
    criteria: list[CriterionOut]
    ruleset: RulesetRef
    application_date: date
    entitlements: list[EntitlementOut]


class EvidenceOut(BaseModel):
    registry: str
    query: str
    status: Literal["ok", "no_record", "unavailable", "invalid"]
    reference: str | None
    queried_at: datetime
    elapsed_ms: float


class ApplicantOut(BaseModel):
    name: str
    id_number: str


class EmployerOut(BaseModel):
    uscc: str
    name: str | None


class EvaluationOut(BaseModel):
    business_type: BusinessTypeName
    applicant: ApplicantOut
    employer: EmployerOut
    decision: DecisionOut
    evidence: list[EvidenceOut]
    submitted_at: datetime
    decided_at: datetime
    elapsed_ms: float


class RevocationOut(BaseModel):
    revoked_at: datetime
    reason: str


class EvaluationResultOut(EvaluationOut):
    evaluation_id: str = Field(description="Names the dry run in the registry access log")


class SecondTryOut(BaseModel):
    attempt: int
    due_at: datetime


class CaseOut(EvaluationOut):
    case_id: str
    status: CaseStatus
    approval_number: str | None = None
    revocation: RevocationOut | None = Field(
        default=None, description="Set when supervision revoked the approval (policy §8)"
    )
    review: CaseReviewOut | None = Field(
        default=None, description="Set when the case was referred to the counter (policy §9)"
    )
    decisions: list[dict[str, Any]] | None = Field(
        default=None,
        description="Every decision of a referred case, oldest first: the first, its second "
        "tries, the counter's",
    )
    stages: list[dict[str, Any]] | None = Field(
        default=None,
        description="What happened after the decision, with dates: decided, certificate_issued, "
        "household_registered, entitlement_paid, revoked",
    )
    second_try: SecondTryOut | None = Field(
        default=None,
        description="The automatic second try still to come of a referral owed to registries",
    )
    access_code: str | None = Field(
        default=None,
        description="The applicant's access code (policy §11), in the answer to the submission "
        "only: pass it on to the applicant. Only its keyed hash is stored; "
        "POST /v1/applications/{case_id}/access-code issues a new one",
    )


class CaseList(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class RuleVersionOut(BaseModel):
    version: str
    effective_from: date
    effective_to: date | None
    fingerprint: str
    in_force: bool


class RuleSetSummary(BaseModel):
    business_type: BusinessTypeName
    title: dict[str, str]
    versions: list[RuleVersionOut]


class RuleSetList(BaseModel):
    items: list[RuleSetSummary]


class RuleCriterionOut(BaseModel):
    id: str
    on_fail: OnFail
    description: dict[str, str]
    reference: str
    registries: list[str]
    facts: list[str]
    pass_when: Any = Field(description="The conditions as the rule file states them")


class RuleSetDetail(RuleVersionOut):
    business_type: BusinessTypeName
    title: dict[str, str]
    reference: str
    parameters: dict[str, Any]
    city_prefix: str
    criteria: list[RuleCriterionOut]


class ReplayDifference(BaseModel):
    criterion: str
    recorded: CriterionResult | None
    replayed: CriterionResult | None


class ReplayOut(BaseModel):
    case_id: str
    identical: bool = Field(description="Same outcome and same result for every criterion")
    recorded_outcome: Outcome
    replayed_outcome: Outcome
    ruleset: RulesetRef
    differences: list[ReplayDifference]
    later_decisions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A referred case's later decisions: each second try replayed from its "
        "evidence; the counter review with the officer's resolutions",
    )


class ReloadOut(BaseModel):
    changed: bool = Field(description="Whether any rule version's fingerprint changed")
    rulesets: list[RulesetRef]


# --- supervision -----------------------------------------------------------------------------


class RequesterOut(BaseModel):
    role: str = Field(description="The client's role, or `system` for miaopi's own re-checks")
    name: str


class AccessLogEntryOut(BaseModel):
    registry: str
    query: str
    purpose: Literal["decision", "dry_run", "recheck"]
    queried_at: datetime
    elapsed_ms: float
    status: Literal["ok", "no_record", "unavailable", "invalid"]
    attempts: int = Field(description="Times the registry was asked (0: its breaker was open)")
    requested_by: RequesterOut


class AccessLogOut(BaseModel):
    case_id: str
    items: list[AccessLogEntryOut]
    next_cursor: str | None = Field(description="Always null: a case's log fits one page")

"""The application as the decision pipeline sees it, independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The rule files define the business types (``RuleBook.business_types``), not this module.
BusinessType = str
CriterionResult = Literal["pass", "fail", "unknown"]
OnFail = Literal["reject", "refer"]
Outcome = Literal["approved", "rejected", "referred"]
CaseStatus = Literal["approved", "rejected", "referred", "revoked"]
Role = Literal["employer", "channel", "auditor", "officer", "registrar", "finance", "admin"]
ROLES: tuple[Role, ...] = (
    "employer", "channel", "auditor", "officer", "registrar", "finance", "admin",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Application:
    business_type: BusinessType
    applicant_name: str
    id_number: str
    employer_uscc: str
    claims: dict[str, str] = field(default_factory=dict)
    commitment_version: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "business_type": self.business_type,
            "applicant": {"name": self.applicant_name, "id_number": self.id_number},
            "employer": {"uscc": self.employer_uscc},
            "claims": dict(self.claims),
            "commitment": {"accepted": True, "version": self.commitment_version},
            "consent": {"data_query": True},
        }

    @classmethod
    def from_json(cls, data: dict) -> Application:
        return cls(
            business_type=data["business_type"],
            applicant_name=data["applicant"]["name"],
            id_number=data["applicant"]["id_number"],
            employer_uscc=data["employer"]["uscc"],
            claims=dict(data.get("claims") or {}),
            commitment_version=(data.get("commitment") or {}).get("version", ""),
        )

"""Ports: the questions miaopi asks each registry, as small abstract classes.

An adapter never raises for a registry's misbehaviour: every outcome is an :class:`Evidence`
whose status says what happened, because a fault must become an ``unknown`` criterion, never
an exception that loses the case.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

EvidenceStatus = Literal["ok", "no_record", "unavailable", "invalid"]
RegistryName = Literal[
    "police",
    "education",
    "overseas_credentials",
    "social_security",
    "credit",
    "hrss",
    "revocations",
]
# The external registries, reached over HTTP (or their mocks); ``revocations`` is miaopi's own.
REGISTRY_NAMES: tuple[RegistryName, ...] = (
    "police",
    "education",
    "overseas_credentials",
    "social_security",
    "credit",
    "hrss",
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One registry query and what came of it."""

    registry: RegistryName
    query: str  # which question, e.g. "person" or "diploma"
    status: EvidenceStatus
    queried_at: datetime
    elapsed_ms: float
    reference: str | None = None  # the registry's receipt for the answer
    record: dict[str, Any] | None = None  # validated answer, JSON-ready; None unless ok
    detail: str | None = None  # why it is not ok, for operators; never personal data
    attempts: int = 1  # how many times the registry was asked (0: its circuit was open)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "query": self.query,
            "status": self.status,
            "reference": self.reference,
            "queried_at": self.queried_at.isoformat(),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "record": self.record,
            "detail": self.detail,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            registry=data["registry"],
            query=data["query"],
            status=data["status"],
            reference=data.get("reference"),
            queried_at=datetime.fromisoformat(data["queried_at"]),
            elapsed_ms=float(data["elapsed_ms"]),
            record=data.get("record"),
            detail=data.get("detail"),
            attempts=int(data.get("attempts", 1)),
        )


class PoliceRegistry(abc.ABC):
    """公安人口库: identity, household registration, criminal records."""

    name: RegistryName = "police"

    @abc.abstractmethod
    async def person(self, id_number: str) -> Evidence:
        """The person record (:class:`PoliceRecord`) for an ID number."""


class EducationRegistry(abc.ABC):
    """学信网 (CHSI): domestic diplomas."""

    name: RegistryName = "education"

    @abc.abstractmethod
    async def diploma(self, diploma_no: str) -> Evidence:
        """The diploma (:class:`Diploma`) with this certificate number."""

    @abc.abstractmethod
    async def diplomas_of(self, id_number: str) -> Evidence:
        """Every diploma the person holds (:class:`DiplomaList`)."""


class OverseasCredentialsRegistry(abc.ABC):
    """教育部留学服务中心 (CSCSE): certifications of foreign degrees."""

    name: RegistryName = "overseas_credentials"

    @abc.abstractmethod
    async def certification(self, certification_no: str) -> Evidence:
        """The certification (:class:`OverseasCertification`) with this number."""

    @abc.abstractmethod
    async def certifications_of(self, id_number: str) -> Evidence:
        """Every certification the person holds (:class:`CertificationList`)."""


class SocialSecurityRegistry(abc.ABC):
    """社保系统: contribution history."""

    name: RegistryName = "social_security"

    @abc.abstractmethod
    async def history(self, id_number: str) -> Evidence:
        """The person's contribution periods (:class:`SocialSecurityHistory`)."""


class HrssRegistry(abc.ABC):
    """人社内部系统: professional titles and postdoctoral station records."""

    name: RegistryName = "hrss"

    @abc.abstractmethod
    async def title(self, title_certificate_no: str) -> Evidence:
        """The professional title (:class:`Title`) with this certificate number."""

    @abc.abstractmethod
    async def postdoc(self, id_number: str) -> Evidence:
        """The person's postdoc station records (:class:`PostdocHistory`)."""


class CreditRegistry(abc.ABC):
    """信用中国 and market regulation: person and employer credit."""

    name: RegistryName = "credit"

    @abc.abstractmethod
    async def person(self, id_number: str) -> Evidence:
        """The person's credit standing (:class:`PersonCredit`)."""

    @abc.abstractmethod
    async def employer(self, uscc: str) -> Evidence:
        """The employer's registration and credit (:class:`EmployerCredit`)."""


class RevocationRegister(abc.ABC):
    """This city's own records: the fraud bars it issued by revoking approvals (policy.md §8),
    and the approvals it gave (policy.md §5: one live approval per person)."""

    name: RegistryName = "revocations"

    @abc.abstractmethod
    async def bars_of(self, id_number: str) -> Evidence:
        """The bars issued against the person (:class:`FraudBarList`), and with them the
        person's latest approval in force: ``"approvals": [{"approval_number",
        "approved_on"}]`` (one read of this city's own records per decision)."""

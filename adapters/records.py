"""What each registry answers, validated strictly: an answer that does not fit is ``invalid``.

These models are the registries' wire format (the mock registries serve exactly this), so the
HTTP adapters and the mocks cannot drift apart.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["junior_college", "bachelor", "master", "doctorate"]
StudyMode = Literal["full_time", "part_time"]
RecordStatus = Literal["valid", "revoked"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriminalRecord(_Record):
    offence: str
    date: date


class PoliceRecord(_Record):
    id_number: str
    name: str
    birth_date: date
    status: Literal["normal", "cancelled", "deceased"]
    hukou_region: str = Field(pattern=r"^\d{6}$")
    criminal_records: list[CriminalRecord]


class Diploma(_Record):
    diploma_no: str
    holder_id_number: str
    level: Level
    study_mode: StudyMode
    institution: str
    graduation_date: date
    status: RecordStatus


class FraudBar(_Record):
    revoked_on: date


class FraudBarList(_Record):
    fraud_bars: list[FraudBar]


class PersonCredit(_Record):
    id_number: str
    dishonest_debtor: bool
    severe_dishonesty: bool
    fraud_bars: list[FraudBar]


class EmployerCredit(_Record):
    uscc: str
    name: str
    status: Literal["active", "revoked", "cancelled"]
    region: str = Field(pattern=r"^\d{6}$")
    risk_class: Literal["A", "B", "C", "D"]
    severe_dishonesty: bool


class DiplomaList(_Record):
    """Every diploma CHSI holds for one person (looked up by holder)."""

    holder_id_number: str
    diplomas: list[Diploma]


class OverseasCertification(_Record):
    certification_no: str
    holder_id_number: str
    level: Level
    country: str = Field(pattern=r"^[A-Z]{2}$")
    institution: str
    awarded_date: date
    status: RecordStatus


class CertificationList(_Record):
    holder_id_number: str
    certifications: list[OverseasCertification]


class ContributionPeriod(_Record):
    employer_uscc: str
    region: str = Field(pattern=r"^\d{6}$")
    from_month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    to_month: str | None = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")  # None: ongoing


class SocialSecurityHistory(_Record):
    id_number: str
    periods: list[ContributionPeriod]


class Title(_Record):
    title_certificate_no: str
    holder_id_number: str
    name: str
    level: Literal["junior", "intermediate", "senior"]
    status: RecordStatus


class PostdocRecord(_Record):
    station: str
    station_region: str = Field(pattern=r"^\d{6}$")
    status: Literal["in_station", "completed", "withdrawn"]
    entered_on: date
    left_on: date | None


class PostdocHistory(_Record):
    id_number: str
    records: list[PostdocRecord]

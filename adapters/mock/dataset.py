"""The mock registries' dataset: the contract's format, strictly checked, and indexed.

Unknown keys and malformed records are refused with the record and field named, so a typo in a
hand-written persona never silently changes what the registries answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from miaopi.adapters.records import Level, RecordStatus, StudyMode
from miaopi.identifiers import CreditCode, ResidentId

Month = str  # YYYY-MM
Fault = Literal["timeout", "error", "malformed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CriminalRecordIn(_Strict):
    offence: str
    date: date


class FraudBarIn(_Strict):
    revoked_on: date


class CreditIn(_Strict):
    dishonest_debtor: bool = False
    severe_dishonesty: bool = False
    fraud_bars: list[FraudBarIn] = Field(default_factory=list)


class DiplomaIn(_Strict):
    diploma_no: str = Field(min_length=1)
    level: Level
    study_mode: StudyMode
    institution: str
    graduation_date: date
    status: RecordStatus = "valid"


class OverseasCertificationIn(_Strict):
    certification_no: str = Field(min_length=1)
    level: Level
    country: str = Field(pattern=r"^[A-Z]{2}$")
    institution: str
    awarded_date: date
    status: RecordStatus = "valid"


class TitleIn(_Strict):
    title_certificate_no: str = Field(min_length=1)
    name: str
    level: Literal["junior", "intermediate", "senior"]
    status: RecordStatus = "valid"


class PostdocIn(_Strict):
    station: str
    station_region: str = Field(pattern=r"^\d{6}$")
    status: Literal["in_station", "completed", "withdrawn"]
    entered_on: date
    left_on: date | None = None


class SocialSecurityIn(_Strict):
    employer_uscc: str
    region: str = Field(pattern=r"^\d{6}$")
    from_: Month = Field(alias="from", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    to: Month | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class PersonIn(_Strict):
    id_number: ResidentId
    name: str = Field(min_length=1)
    birth_date: date
    status: Literal["normal", "cancelled", "deceased"] = "normal"
    hukou_region: str = Field(pattern=r"^\d{6}$")
    criminal_records: list[CriminalRecordIn] = Field(default_factory=list)
    credit: CreditIn = Field(default_factory=CreditIn)
    diplomas: list[DiplomaIn] = Field(default_factory=list)
    overseas_certifications: list[OverseasCertificationIn] = Field(default_factory=list)
    titles: list[TitleIn] = Field(default_factory=list)
    postdoc: list[PostdocIn] = Field(default_factory=list)
    social_security: list[SocialSecurityIn] = Field(default_factory=list)
    faults: dict[
        Literal["police", "education", "overseas_credentials", "social_security", "credit", "hrss"],
        Fault,
    ] = Field(default_factory=dict)


class EmployerIn(_Strict):
    uscc: CreditCode
    name: str = Field(min_length=1)
    status: Literal["active", "revoked", "cancelled"] = "active"
    region: str = Field(pattern=r"^\d{6}$")
    risk_class: Literal["A", "B", "C", "D"] = "B"
    severe_dishonesty: bool = False


class DatasetIn(_Strict):
    persons: list[PersonIn] = Field(default_factory=list)
    employers: list[EmployerIn] = Field(default_factory=list)


class DatasetError(ValueError):
    pass


def _describe(exc: ValidationError, data: dict) -> str:
    problems = []
    for err in exc.errors()[:10]:
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] in ("persons", "employers") and isinstance(loc[1], int):
            items = data.get(loc[0]) or []
            item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
            key = item.get("id_number") or item.get("uscc")
            if key:
                # Mask even here: the dataset may be a real extract and errors end up in logs.
                shown = key[:6] + "…" + key[-4:] if len(key) > 10 else key
                where = f"{loc[0]}[{loc[1]}] ({shown}).{'.'.join(str(p) for p in loc[2:])}"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


@dataclass
class Dataset:
    persons: dict[str, PersonIn] = field(default_factory=dict)
    employers: dict[str, EmployerIn] = field(default_factory=dict)
    diplomas: dict[str, tuple[PersonIn, DiplomaIn]] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: object, source: str = "<data>") -> Dataset:
        if not isinstance(data, dict):
            raise DatasetError(f"{source}: a dataset is a mapping with persons and employers")
        try:
            parsed = DatasetIn.model_validate(data)
        except ValidationError as exc:
            raise DatasetError(f"{source}: {_describe(exc, data)}") from exc
        ds = cls()
        for p in parsed.persons:
            if p.id_number in ds.persons:
                raise DatasetError(f"{source}: person {p.id_number[:6]}… appears twice")
            ds.persons[p.id_number] = p
            for d in p.diplomas:
                if d.diploma_no in ds.diplomas:
                    raise DatasetError(f"{source}: diploma {d.diploma_no} appears twice")
                ds.diplomas[d.diploma_no] = (p, d)
        for e in parsed.employers:
            if e.uscc in ds.employers:
                raise DatasetError(f"{source}: employer {e.uscc} appears twice")
            ds.employers[e.uscc] = e
        return ds

    @classmethod
    def load(cls, path: Path) -> Dataset:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DatasetError(f"{path}: cannot be read: {exc.strerror}") from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise DatasetError(
                f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
            ) from exc
        return cls.from_data(data, str(path))

    @classmethod
    def bundled(cls) -> Dataset:
        ref = resources.files("miaopi.adapters.mock").joinpath("personas.yaml")
        return cls.from_data(
            yaml.safe_load(ref.read_text(encoding="utf-8")), "bundled personas.yaml"
        )

"""The fact catalogue: how registry answers become the named facts that rules speak about.

Facts are what the evidence says, not what the policy wants: "the police record's name equals
the given name", "the diploma's level is master". Every eligibility threshold lives in
``rules/``. A fact is ``None`` (unknown) when the answer it comes from is missing, so a
criterion using it can never pass.

Identity comparisons are made here and recorded as booleans so that decision facts, which are
stored and shown to HR, never carry names or ID numbers.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from stdnum.cn import ric

from miaopi.domain import Application
from miaopi.eligibility.dates import age_on
from miaopi.evidence.ports import RegistryName

FactType = Literal["str", "int", "bool", "date"]


@dataclass(frozen=True, slots=True)
class Query:
    """One question to one registry."""

    registry: RegistryName
    name: str

    @property
    def key(self) -> str:
        return f"{self.registry}.{self.name}"


POLICE_PERSON = Query("police", "person")
EDUCATION_DIPLOMA = Query("education", "diploma")
EDUCATION_DIPLOMAS_OF = Query("education", "diplomas_of")
OVERSEAS_CERTIFICATION = Query("overseas_credentials", "certification")
OVERSEAS_CERTIFICATIONS_OF = Query("overseas_credentials", "certifications_of")
SOCIAL_SECURITY_HISTORY = Query("social_security", "history")
CREDIT_PERSON = Query("credit", "person")
CREDIT_EMPLOYER = Query("credit", "employer")
HRSS_TITLE = Query("hrss", "title")
HRSS_POSTDOC = Query("hrss", "postdoc")
REVOCATIONS_BARS_OF = Query("revocations", "bars_of")


def query_argument(query: Query, application: Application) -> str | None:
    """What the query asks about, taken from the application; None if the claim is absent."""
    if query in (
        POLICE_PERSON,
        CREDIT_PERSON,
        EDUCATION_DIPLOMAS_OF,
        OVERSEAS_CERTIFICATIONS_OF,
        SOCIAL_SECURITY_HISTORY,
        HRSS_POSTDOC,
        REVOCATIONS_BARS_OF,
    ):
        return application.id_number
    if query == CREDIT_EMPLOYER:
        return application.employer_uscc
    if query == EDUCATION_DIPLOMA:
        return application.claims.get("diploma_no")
    if query == OVERSEAS_CERTIFICATION:
        return application.claims.get("certification_no")
    if query == HRSS_TITLE:
        return application.claims.get("title_certificate_no")
    raise KeyError(query.key)


@dataclass(frozen=True, slots=True)
class FactContext:
    application: Application
    application_date: date
    records: dict[Query, dict[str, Any]]  # only answers whose evidence is ``ok``
    city_prefix: str = ""


@dataclass(frozen=True, slots=True)
class FactSpec:
    name: str
    type: FactType
    sources: tuple[Query, ...]
    derive: Callable[..., Any]

    @property
    def registries(self) -> tuple[RegistryName, ...]:
        return tuple(dict.fromkeys(q.registry for q in self.sources))

    def value(self, ctx: FactContext) -> Any:
        records = [ctx.records.get(q) for q in self.sources]
        if any(r is None for r in records):
            return None
        return self.derive(ctx, *records)


FACTS: dict[str, FactSpec] = {}


def _fact(name: str, type_: FactType, *sources: Query) -> Callable[[Callable[..., Any]], None]:
    def register(derive: Callable[..., Any]) -> None:
        FACTS[name] = FactSpec(name, type_, sources, derive)

    return register


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return "".join(unicodedata.normalize("NFKC", s).split())

    return norm(a) == norm(b)


def _d(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@_fact("application_date", "date")
def _application_date(ctx: FactContext) -> date:
    return ctx.application_date


@_fact("police_name_matches", "bool", POLICE_PERSON)
def _police_name_matches(ctx: FactContext, police: dict) -> bool:
    return _same_name(police["name"], ctx.application.applicant_name)


@_fact("police_status", "str", POLICE_PERSON)
def _police_status(ctx: FactContext, police: dict) -> str:
    return police["status"]


@_fact("police_birth_date_matches_id", "bool", POLICE_PERSON)
def _police_birth_date_matches_id(ctx: FactContext, police: dict) -> bool:
    return _d(police["birth_date"]) == ric.get_birth_date(ctx.application.id_number)


@_fact("hukou_region", "str", POLICE_PERSON)
def _hukou_region(ctx: FactContext, police: dict) -> str:
    return police["hukou_region"]


@_fact("criminal_record_count", "int", POLICE_PERSON)
def _criminal_record_count(ctx: FactContext, police: dict) -> int:
    return len(police["criminal_records"])


@_fact("age", "int", POLICE_PERSON)
def _age(ctx: FactContext, police: dict) -> int:
    return age_on(_d(police["birth_date"]), ctx.application_date)


@_fact("dishonest_debtor", "bool", CREDIT_PERSON)
def _dishonest_debtor(ctx: FactContext, credit: dict) -> bool:
    return bool(credit["dishonest_debtor"])


@_fact("severe_dishonesty", "bool", CREDIT_PERSON)
def _severe_dishonesty(ctx: FactContext, credit: dict) -> bool:
    return bool(credit["severe_dishonesty"])


def _bars_issued(ctx: FactContext, credit: dict, own: dict) -> list[date]:
    """Bars on the national credit list and in this city's own revocation register.

    A bar issued after the application date did not exist yet on that date (matters for dry
    runs with a past ``as_of``, for replays and for re-checks).
    """
    issued = (_d(b["revoked_on"]) for b in [*credit["fraud_bars"], *own["fraud_bars"]])
    return sorted(d for d in issued if d <= ctx.application_date)


@_fact("fraud_bar_count", "int", CREDIT_PERSON, REVOCATIONS_BARS_OF)
def _fraud_bar_count(ctx: FactContext, credit: dict, own: dict) -> int:
    return len(_bars_issued(ctx, credit, own))


@_fact("latest_fraud_bar_on", "date", CREDIT_PERSON, REVOCATIONS_BARS_OF)
def _latest_fraud_bar_on(ctx: FactContext, credit: dict, own: dict) -> date | None:
    bars = _bars_issued(ctx, credit, own)
    return bars[-1] if bars else None


def _prior_approvals(ctx: FactContext, own: dict) -> list[dict]:
    """The person's approvals in force from days before the application's. The approval a
    re-check or a replay looks at is its own, of the application day; an approval earlier the
    same day is caught when the second one is recorded (``live_approvals.claim``)."""
    return [a for a in own.get("approvals", []) if _d(a["approved_on"]) < ctx.application_date]


@_fact("prior_approval_count", "int", REVOCATIONS_BARS_OF)
def _prior_approval_count(ctx: FactContext, own: dict) -> int:
    return len(_prior_approvals(ctx, own))


@_fact("latest_prior_approval_on", "date", REVOCATIONS_BARS_OF)
def _latest_prior_approval_on(ctx: FactContext, own: dict) -> date | None:
    prior = _prior_approvals(ctx, own)
    return _d(prior[-1]["approved_on"]) if prior else None


@_fact("latest_prior_approval_number", "str", REVOCATIONS_BARS_OF)
def _latest_prior_approval_number(ctx: FactContext, own: dict) -> str | None:
    prior = _prior_approvals(ctx, own)
    return prior[-1]["approval_number"] if prior else None


@_fact("employer_status", "str", CREDIT_EMPLOYER)
def _employer_status(ctx: FactContext, employer: dict) -> str:
    return employer["status"]


@_fact("employer_region", "str", CREDIT_EMPLOYER)
def _employer_region(ctx: FactContext, employer: dict) -> str:
    return employer["region"]


@_fact("employer_severe_dishonesty", "bool", CREDIT_EMPLOYER)
def _employer_severe_dishonesty(ctx: FactContext, employer: dict) -> bool:
    return bool(employer["severe_dishonesty"])


@_fact("diploma_holder_is_applicant", "bool", EDUCATION_DIPLOMA)
def _diploma_holder_is_applicant(ctx: FactContext, diploma: dict) -> bool:
    return diploma["holder_id_number"].upper() == ctx.application.id_number.upper()


@_fact("diploma_status", "str", EDUCATION_DIPLOMA)
def _diploma_status(ctx: FactContext, diploma: dict) -> str:
    return diploma["status"]


@_fact("diploma_level", "str", EDUCATION_DIPLOMA)
def _diploma_level(ctx: FactContext, diploma: dict) -> str:
    return diploma["level"]


@_fact("diploma_study_mode", "str", EDUCATION_DIPLOMA)
def _diploma_study_mode(ctx: FactContext, diploma: dict) -> str:
    return diploma["study_mode"]


@_fact("graduation_date", "date", EDUCATION_DIPLOMA)
def _graduation_date(ctx: FactContext, diploma: dict) -> date:
    return _d(diploma["graduation_date"])


@_fact("diploma_claimed", "bool")
def _diploma_claimed(ctx: FactContext) -> bool:
    return "diploma_no" in ctx.application.claims


@_fact("title_claimed", "bool")
def _title_claimed(ctx: FactContext) -> bool:
    return "title_certificate_no" in ctx.application.claims


@_fact("title_holder_is_applicant", "bool", HRSS_TITLE)
def _title_holder_is_applicant(ctx: FactContext, title: dict) -> bool:
    return title["holder_id_number"].upper() == ctx.application.id_number.upper()


@_fact("title_status", "str", HRSS_TITLE)
def _title_status(ctx: FactContext, title: dict) -> str:
    return title["status"]


@_fact("title_level", "str", HRSS_TITLE)
def _title_level(ctx: FactContext, title: dict) -> str:
    return title["level"]


@_fact("certification_holder_is_applicant", "bool", OVERSEAS_CERTIFICATION)
def _certification_holder_is_applicant(ctx: FactContext, cert: dict) -> bool:
    return cert["holder_id_number"].upper() == ctx.application.id_number.upper()


@_fact("certification_status", "str", OVERSEAS_CERTIFICATION)
def _certification_status(ctx: FactContext, cert: dict) -> str:
    return cert["status"]


@_fact("certification_level", "str", OVERSEAS_CERTIFICATION)
def _certification_level(ctx: FactContext, cert: dict) -> str:
    return cert["level"]


def _month(text: str) -> int:
    year, month = text.split("-")
    return int(year) * 12 + int(month) - 1


def _contribution_months(ctx: FactContext, history: dict) -> set[int]:
    """Months (as indexes) paid in the city to the applying employer, up to the application."""
    now = ctx.application_date.year * 12 + ctx.application_date.month - 1
    months: set[int] = set()
    for period in history["periods"]:
        if period["employer_uscc"].upper() != ctx.application.employer_uscc.upper():
            continue
        if not period["region"].startswith(ctx.city_prefix):
            continue
        end = now if period["to_month"] is None else min(_month(period["to_month"]), now)
        months.update(range(_month(period["from_month"]), end + 1))
    return months


@_fact("contribution_run_months", "int", SOCIAL_SECURITY_HISTORY)
def _contribution_run_months(ctx: FactContext, history: dict) -> int:
    """Length of the unbroken run of months ending at the latest month paid."""
    months = _contribution_months(ctx, history)
    if not months:
        return 0
    last, run = max(months), 0
    while last - run in months:
        run += 1
    return run


@_fact("months_since_last_contribution", "int", SOCIAL_SECURITY_HISTORY)
def _months_since_last_contribution(ctx: FactContext, history: dict) -> int | None:
    months = _contribution_months(ctx, history)
    now = ctx.application_date.year * 12 + ctx.application_date.month - 1
    return now - max(months) if months else None


def _latest_postdoc(postdoc: dict) -> dict:
    return max(postdoc["records"], key=lambda r: str(r["entered_on"]))


@_fact("postdoc_status", "str", HRSS_POSTDOC)
def _postdoc_status(ctx: FactContext, postdoc: dict) -> str | None:
    return _latest_postdoc(postdoc)["status"] if postdoc["records"] else None


@_fact("postdoc_station_region", "str", HRSS_POSTDOC)
def _postdoc_station_region(ctx: FactContext, postdoc: dict) -> str | None:
    return _latest_postdoc(postdoc)["station_region"] if postdoc["records"] else None


def _valid_doctorates(ctx: FactContext, items: list[dict]) -> int | None:
    """How many valid doctorates of the applicant the registry holds; None when it holds no
    doctorate at all. Policy §6 says "(none found: unknown)": no doctorate found is not
    proof that there is none (a degree from elsewhere, a record not yet filed), so the
    criterion is unknown and the case referred; a doctorate found but revoked, or another's,
    disproves it."""
    applicant = ctx.application.id_number.upper()
    doctorates = [i for i in items if i["level"] == "doctorate"]
    if not doctorates:
        return None
    return sum(
        1
        for i in doctorates
        if i["status"] == "valid" and i["holder_id_number"].upper() == applicant
    )


@_fact("domestic_valid_doctorates", "int", EDUCATION_DIPLOMAS_OF)
def _domestic_valid_doctorates(ctx: FactContext, diplomas: dict) -> int | None:
    return _valid_doctorates(ctx, diplomas["diplomas"])


@_fact("overseas_valid_doctorates", "int", OVERSEAS_CERTIFICATIONS_OF)
def _overseas_valid_doctorates(ctx: FactContext, certs: dict) -> int | None:
    return _valid_doctorates(ctx, certs["certifications"])


def derive_facts(names: set[str], ctx: FactContext) -> dict[str, Any]:
    """The named facts, each a value or None when its evidence is missing."""
    return {name: FACTS[name].value(ctx) for name in sorted(names)}

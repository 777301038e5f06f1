"""Ask the registries what a ruleset needs to know, all at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from miaopi.adapters.ports import (
    CreditRegistry,
    EducationRegistry,
    Evidence,
    HrssRegistry,
    OverseasCredentialsRegistry,
    PoliceRegistry,
    SocialSecurityRegistry,
)
from miaopi.domain import Application
from miaopi.evidence.facts import (
    CREDIT_EMPLOYER,
    CREDIT_PERSON,
    EDUCATION_DIPLOMA,
    EDUCATION_DIPLOMAS_OF,
    HRSS_POSTDOC,
    HRSS_TITLE,
    OVERSEAS_CERTIFICATION,
    OVERSEAS_CERTIFICATIONS_OF,
    POLICE_PERSON,
    SOCIAL_SECURITY_HISTORY,
    Query,
    query_argument,
)


@dataclass(frozen=True)
class Registries:
    """The ports, as wired by the composition root."""

    police: PoliceRegistry
    education: EducationRegistry
    overseas_credentials: OverseasCredentialsRegistry
    social_security: SocialSecurityRegistry
    credit: CreditRegistry
    hrss: HrssRegistry

    def ask(self, query: Query, argument: str) -> Awaitable[Evidence]:
        questions = {
            POLICE_PERSON: self.police.person,
            EDUCATION_DIPLOMA: self.education.diploma,
            EDUCATION_DIPLOMAS_OF: self.education.diplomas_of,
            OVERSEAS_CERTIFICATION: self.overseas_credentials.certification,
            OVERSEAS_CERTIFICATIONS_OF: self.overseas_credentials.certifications_of,
            SOCIAL_SECURITY_HISTORY: self.social_security.history,
            CREDIT_PERSON: self.credit.person,
            CREDIT_EMPLOYER: self.credit.employer,
            HRSS_TITLE: self.hrss.title,
            HRSS_POSTDOC: self.hrss.postdoc,
        }
        return questions[query](argument)


async def gather(
    registries: Registries, queries: list[Query], application: Application
) -> dict[Query, Evidence]:
    """The evidence of every query the application gives an argument for, asked at once.

    A claim the applicant did not make is not asked about (its facts stay unknown, and the
    ``*_claimed`` facts say why). A registry's fault is evidence too, never an exception.
    """
    pending: dict[Query, Awaitable[Evidence]] = {}
    for query in queries:
        argument = query_argument(query, application)
        if argument is not None:
            pending[query] = registries.ask(query, argument)
    answers = await asyncio.gather(*pending.values())
    return dict(zip(pending, answers, strict=True))

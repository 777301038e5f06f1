"""Ask the registries what a ruleset needs to know, all at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from miaopi.domain import Application
from miaopi.evidence.facts import (
    Query,
    query_argument,
)
from miaopi.evidence.ports import (
    CreditRegistry,
    EducationRegistry,
    Evidence,
    HrssRegistry,
    OverseasCredentialsRegistry,
    PoliceRegistry,
    RevocationRegister,
    SocialSecurityRegistry,
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
    revocations: RevocationRegister

    def ask(self, query: Query, argument: str) -> Awaitable[Evidence]:
        # A query is named after its port and method: ("police", "person") → police.person().
        port = getattr(self, query.registry)
        return getattr(port, query.name)(argument)


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

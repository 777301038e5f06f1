"""Ask the registries what a ruleset needs to know, all at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

from miaopi.adapters.ports import CreditRegistry, EducationRegistry, Evidence, PoliceRegistry
from miaopi.domain import Application
from miaopi.evidence.facts import (
    CREDIT_EMPLOYER,
    CREDIT_PERSON,
    EDUCATION_DIPLOMA,
    POLICE_PERSON,
    Query,
    query_argument,
)


@dataclass(frozen=True)
class Registries:
    """The ports, as wired by the composition root."""

    police: PoliceRegistry
    education: EducationRegistry
    credit: CreditRegistry

    def ask(self, query: Query, argument: str) -> Awaitable[Evidence]:
        if query == POLICE_PERSON:
            return self.police.person(argument)
        if query == EDUCATION_DIPLOMA:
            return self.education.diploma(argument)
        if query == CREDIT_PERSON:
            return self.credit.person(argument)
        if query == CREDIT_EMPLOYER:
            return self.credit.employer(argument)
        raise KeyError(query.key)


def _not_asked(query: Query, why: str) -> Evidence:
    return Evidence(
        registry=query.registry,
        query=query.name,
        status="no_record",
        queried_at=datetime.now(UTC),
        elapsed_ms=0.0,
        detail=why,
    )


async def gather(
    registries: Registries, queries: list[Query], application: Application
) -> dict[Query, Evidence]:
    """Every query's evidence; a registry's fault is evidence too, never an exception."""
    pending: dict[Query, Awaitable[Evidence]] = {}
    results: dict[Query, Evidence] = {}
    for query in queries:
        argument = query_argument(query, application)
        if argument is None:
            results[query] = _not_asked(query, "the application makes no claim to look up")
        else:
            pending[query] = registries.ask(query, argument)
    answers = await asyncio.gather(*pending.values())
    results.update(zip(pending, answers, strict=True))
    return {q: results[q] for q in queries}

"""The rules as objects: rulesets, criteria, conditions and their operands.

A ruleset is built from its *definition*: plain JSON data holding everything that decides an
outcome (criteria, parameters, the city prefix). Its fingerprint is the SHA-256 of that
definition's canonical JSON, and the definition is stored with the first decision that uses
it, so a decision can be replayed after the rule files have changed (``build.py`` makes a
ruleset from a definition; ``ruleset.py`` reads the files).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal

from miaopi.domain import BusinessType, OnFail
from miaopi.evidence.facts import FACTS, Query
from miaopi.evidence.ports import RegistryName
from miaopi.supervision.terms import SupervisionTerms

SEMANTICS_VERSION = 1

Op = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "starts_with", "not_starts_with"]
OPS: tuple[Op, ...] = (
    "eq",
    "ne",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "not_in",
    "starts_with",
    "not_starts_with",
)
ORDERED = {"lt", "lte", "gt", "gte"}
PREFIX = re.compile(r"^[0-9A-Za-z]+$")


class RuleFileError(ValueError):
    """A rule file that cannot be used; says which file, where in it and why."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        self.file, self.path, self.reason = file, path, reason
        super().__init__(f"{file}: {path or '(top)'}: {reason}")


# --- operands after resolution -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any  # str | int | float | bool | date | tuple[str, ...]
    label: str | None = None  # shown among the criterion's facts when set (`as:`)


@dataclass(frozen=True, slots=True)
class FactRef:
    name: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """A parameter table looked up by a fact's value; unknown when the key is not in it."""

    table: tuple[tuple[str, Any], ...]
    key: str
    label: str

    def resolve(self, key_value: Any) -> Any:
        return dict(self.table).get(key_value)


@dataclass(frozen=True, slots=True)
class DateAdd:
    fact: str
    years: int
    label: str


Operand = Const | FactRef | Lookup | DateAdd


@dataclass(frozen=True, slots=True)
class Condition:
    fact: str
    op: Op
    operand: Operand

    @property
    def facts(self) -> tuple[str, ...]:
        extra: tuple[str, ...] = ()
        if isinstance(self.operand, FactRef):
            extra = (self.operand.name,)
        elif isinstance(self.operand, Lookup):
            extra = (self.operand.key,)
        elif isinstance(self.operand, DateAdd):
            extra = (self.operand.fact,)
        return (self.fact, *extra)


@dataclass(frozen=True)  # not slotted: cached_property needs an instance dict
class Criterion:
    id: str
    on_fail: OnFail
    description: dict[str, str]
    reference: str
    branches: tuple[tuple[Condition, ...], ...]  # passes when every condition of one branch holds

    @cached_property
    def facts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for b in self.branches for c in b for f in c.facts))

    @cached_property
    def registries(self) -> tuple[RegistryName, ...]:
        return tuple(dict.fromkeys(r for f in self.facts for r in FACTS[f].registries))


@dataclass(frozen=True, slots=True)
class Entitlement:
    """Granted after an approval when its conditions hold; the amount comes from a table."""

    id: str
    description: dict[str, str]
    reference: str
    branches: tuple[tuple[Condition, ...], ...]
    amount: Lookup


@dataclass(frozen=True)
class Ruleset:
    business_type: BusinessType
    version: str
    effective_from: date
    effective_to: date | None
    definition: dict[str, Any] = field(repr=False)
    criteria: tuple[Criterion, ...] = field(repr=False)
    fingerprint: str = ""
    entitlements: tuple[Entitlement, ...] = field(default=(), repr=False)
    # What an application must claim, each group one of (the file's ``claims``): a condition
    # of the request, not of the outcome, so it is not part of the definition's fingerprint.
    required_claims: tuple[tuple[str, ...], ...] = field(default=(), repr=False)

    @property
    def title(self) -> dict[str, str]:
        return self.definition["title"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.definition["parameters"]

    @property
    def reference(self) -> str:
        return self.definition["reference"]

    @cached_property
    def supervision(self) -> SupervisionTerms:
        """How approvals under this version are supervised (checked when the files load)."""
        return SupervisionTerms.of(self.parameters)

    @cached_property
    def facts(self) -> tuple[str, ...]:
        """Every fact a decision needs, entitlements included (they use the same evidence)."""
        names = [f for c in self.criteria for f in c.facts]
        for e in self.entitlements:
            names += [f for b in e.branches for c in b for f in c.facts] + [e.amount.key]
        return tuple(dict.fromkeys(names))

    @cached_property
    def queries(self) -> tuple[Query, ...]:
        """The registry queries whose answers those facts come from, in a stable order."""
        found = {q.key: q for name in self.facts for q in FACTS[name].sources}
        return tuple(found[k] for k in sorted(found))

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def summary(self) -> dict[str, Any]:
        return {
            "business_type": self.business_type,
            "version": self.version,
            "fingerprint": self.fingerprint,
        }


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(definition: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(definition)).hexdigest()

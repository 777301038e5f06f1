"""Rulesets compiled to durable-rules' rule definitions: plain JSON data, no engine calls.

``engine.py`` hands the result to durable-rules; everything here is a pure function of the
ruleset, so it can be read and tested without the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from miaopi.eligibility.dates import add_years
from miaopi.eligibility.model import Condition, Const, DateAdd, FactRef, Lookup, Ruleset

TYPE = "application"
ALWAYS = frozenset({"t", "id"})  # the fields every fact carries: the type guard and its id
# durable-rules compiles each rule's conditions into at most 31 expressions: a nested $and or
# $or takes two, a comparison with another field one, a comparison with a constant none.
_MAX_EXPRESSIONS = 31


def field_of(fact: str) -> str:
    return "f_" + fact


def encode(value: Any) -> Any:
    return value.toordinal() if isinstance(value, date) else value


def _not_prefix(field: str, prefix: str) -> dict[str, Any]:
    # durable's regex subset has no negation or lookahead, so "does not start with P" is the
    # union of "differs at position i" for each i, plus "shorter than P".
    alternatives: list[dict[str, Any]] = [
        {"$mt": {field: re.escape(prefix[:i]) + "[^" + prefix[i] + "].*"}}
        for i in range(len(prefix))
    ]
    alternatives.append({"$mt": {field: f".{{0,{len(prefix) - 1}}}"}})
    return {"$or": alternatives}


@dataclass(frozen=True, slots=True)
class _Aux:
    """An operand computed per evaluation: a table lookup or a date shifted by years."""

    criterion: str
    field: str
    label: str
    operand: Lookup | DateAdd

    def value(self, facts: dict[str, Any]) -> Any:
        if isinstance(self.operand, Lookup):
            key = facts.get(self.operand.key)
            return None if key is None else self.operand.resolve(key)
        base = facts.get(self.operand.fact)
        return None if base is None else add_years(base, self.operand.years)


@dataclass(frozen=True, slots=True)
class _Condition:
    rule: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Branch:
    rule: str
    criterion: str
    fields: tuple[str, ...]  # every field the branch reads
    conditions: tuple[_Condition, ...]


@dataclass(frozen=True)
class Compiled:
    all_name: str
    all_definition: dict[str, Any]
    all_hold: frozenset[str]  # the rules that all fire when every criterion holds
    name: str
    branches: tuple[Branch, ...]
    aux: tuple[_Aux, ...]
    definition: dict[str, Any]
    conditions_name: str
    conditions_definition: dict[str, Any]
    labelled: tuple[tuple[str, str, Any], ...]  # (criterion, label, value) of named constants
    entitlements_name: str
    entitlements_definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BranchResults:
    """What the engine saw: fired rules, present fields, the operand values it computed."""

    all_passed: bool  # every criterion has a branch that matched
    fired: frozenset[str]  # branch rules that matched (asked only when not all passed)
    present: frozenset[str]  # fields that had a value
    operands: dict[str, dict[str, Any]]  # criterion → computed operand label → value
    true_conditions: frozenset[str]  # condition rules that matched (third pass only)


def compile_ruleset(ruleset: Ruleset) -> Compiled:
    fp = ruleset.fingerprint.removeprefix("sha256:")[:16]
    name = f"{ruleset.business_type}_{ruleset.version.replace('.', '_')}_{fp}"
    rules: dict[str, Any] = {}
    condition_rules: dict[str, Any] = {}
    branches: list[Branch] = []
    aux: list[_Aux] = []
    labelled: list[tuple[str, str, Any]] = []

    def guarded(matchers: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
        return [*({"$ex": {f: 1}} for f in fields), *matchers]

    def rule_for(matchers: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
        return {"all": [{"m": {"$and": [{"t": TYPE}, *guarded(matchers, fields)]}}]}

    every_criterion: list[list[dict[str, Any]]] = []
    for criterion in ruleset.criteria:
        alternatives: list[list[dict[str, Any]]] = []
        for b, conditions in enumerate(criterion.branches):
            rule = f"{criterion.id}__{b}"
            matchers: list[dict[str, Any]] = []
            fields: list[str] = []
            compiled_conditions: list[_Condition] = []
            for k, condition in enumerate(conditions):
                operand = condition.operand
                if isinstance(operand, Const) and operand.label:
                    labelled.append((criterion.id, operand.label, operand.value))
                matcher, used, extra = _leaf(condition, criterion.id, f"x_{criterion.id}_{b}_{k}")
                matchers.append(matcher)
                fields.extend(used)
                aux.extend(extra)
                used = list(dict.fromkeys(used))
                condition_rules[f"{rule}__{k}"] = rule_for([matcher], used)
                compiled_conditions.append(_Condition(f"{rule}__{k}", tuple(used)))
            fields = list(dict.fromkeys(fields))
            rules[rule] = rule_for(matchers, fields)
            alternatives.append(guarded(matchers, fields))
            branches.append(Branch(rule, criterion.id, tuple(fields), tuple(compiled_conditions)))
        every_criterion.append(
            alternatives[0]
            if len(alternatives) == 1
            else [{"$or": [{"$and": a} for a in alternatives]}]
        )
    entitlement_rules: dict[str, Any] = {}
    for entitlement in ruleset.entitlements:
        matchers, fields = [], []
        for k, condition in enumerate(entitlement.branches[0]):
            matcher, used, extra = _leaf(condition, entitlement.id, f"e_{entitlement.id}_{k}")
            matchers.append(matcher)
            fields.extend(used)
            aux.extend(extra)
        entitlement_rules[entitlement.id] = rule_for(matchers, list(dict.fromkeys(fields)))
    seen = {"all": [{"m": {"t": TYPE}}]}
    rules["seen"] = condition_rules["seen"] = entitlement_rules["seen"] = seen
    all_rules: dict[str, Any] = {"seen": seen}
    for k, part in enumerate(_packed(every_criterion)):
        all_rules[f"all_hold__{k}"] = {"all": [{"m": {"$and": [{"t": TYPE}, *part]}}]}
    return Compiled(
        name + "_all",
        all_rules,
        frozenset(all_rules) - {"seen"},
        name,
        tuple(branches),
        tuple(aux),
        rules,
        name + "_conditions",
        condition_rules,
        tuple(labelled),
        name + "_entitlements",
        entitlement_rules,
    )


def _expressions(matcher: Any) -> int:
    if isinstance(matcher, list):
        return sum(_expressions(m) for m in matcher)
    if not isinstance(matcher, dict):
        return 0
    if "$and" in matcher or "$or" in matcher:
        return 2 + _expressions(matcher.get("$and", matcher.get("$or")))
    (operand,) = matcher.values()
    if isinstance(operand, dict):  # {"$op": {field: right}}
        (operand,) = operand.values()
    return 1 if isinstance(operand, dict) and "$m" in operand else 0


def _packed(criteria: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The criteria's conjunctions, packed into as few rules as durable's limit allows.

    None fit when one criterion alone exceeds the limit: there is then no shortcut.
    """
    parts: list[list[dict[str, Any]]] = [[]]
    room = _MAX_EXPRESSIONS - 2  # the rule's own $and
    for matchers in criteria:
        cost = _expressions(matchers)
        if cost > _MAX_EXPRESSIONS - 2:
            return []
        if cost > room and parts[-1]:
            parts.append([])
            room = _MAX_EXPRESSIONS - 2
        parts[-1].extend(matchers)
        room -= cost
    return parts


def _leaf(
    condition: Condition, criterion: str, aux_field: str
) -> tuple[dict[str, Any], list[str], list[_Aux]]:
    field = field_of(condition.fact)
    used = [field]
    extra: list[_Aux] = []
    operand = condition.operand
    if isinstance(operand, Const):
        right: Any = operand.value
    elif isinstance(operand, FactRef):
        right = {"$m": field_of(operand.name)}
        used.append(field_of(operand.name))
    else:
        right = {"$m": aux_field}
        used.append(aux_field)
        extra.append(_Aux(criterion, aux_field, operand.label, operand))

    op = condition.op
    if op == "eq":
        return {field: encode(right)}, used, extra
    if op == "ne":
        return {"$neq": {field: encode(right)}}, used, extra
    if op in ("lt", "lte", "gt", "gte"):
        return {f"${op}": {field: encode(right)}}, used, extra
    if op == "in":
        if not right:
            return {"$and": [{field: 0}, {"$neq": {field: 0}}]}, used, extra  # never true
        return {"$or": [{field: encode(v)} for v in right]}, used, extra
    if op == "not_in":
        if not right:
            return {"$ex": {field: 1}}, used, extra
        return {"$and": [{"$neq": {field: encode(v)}} for v in right]}, used, extra
    if op == "starts_with":
        return {"$mt": {field: re.escape(right) + ".*"}}, used, extra
    if op == "not_starts_with":
        return _not_prefix(field, right), used, extra
    raise ValueError(f"unsupported operator {op}")  # the loader rejects these first

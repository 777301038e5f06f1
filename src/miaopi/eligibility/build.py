"""Building a ruleset from its definition, checking every criterion as it is built.

A mistake in a rule file (an unknown fact, a parameter missing, an operator that does not fit
the fact's type) is a ``RuleFileError`` naming the file and the path, at load time, never a
wrong decision later.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any, cast

from miaopi.eligibility.model import (
    ORDERED,
    PREFIX,
    Condition,
    Const,
    Criterion,
    DateAdd,
    Entitlement,
    FactRef,
    Lookup,
    Op,
    Operand,
    RuleFileError,
    Ruleset,
    fingerprint,
)
from miaopi.evidence.facts import FACTS, FactType


def ruleset_of(
    definition: dict[str, Any],
    source: str = "<stored>",
    origins: list[tuple[str, int]] | None = None,
) -> Ruleset:
    """Build and check a ruleset; ``origins`` names each criterion's file and index."""
    definition = copy.deepcopy(definition)
    params = definition["parameters"]
    settings = definition["settings"]
    where = origins or [(source, i) for i in range(len(definition["criteria"]))]
    criteria = tuple(
        _criterion(c, params, settings, where[i][0], f"criteria[{where[i][1]}]")
        for i, c in enumerate(definition["criteria"])
    )
    seen: set[str] = set()
    for i, c in enumerate(criteria):
        if c.id in seen:
            file, index = where[i]
            raise RuleFileError(
                file, f"criteria[{index}].id", f"duplicate criterion id {c.id!r}"
            )
        seen.add(c.id)
    entitlements = tuple(
        _entitlement(e, params, settings, source, f"entitlements[{i}]")
        for i, e in enumerate(definition.get("entitlements", []))
    )
    return Ruleset(
        entitlements=entitlements,
        business_type=definition["business_type"],
        version=definition["version"],
        effective_from=date.fromisoformat(definition["effective_from"]),
        effective_to=(
            date.fromisoformat(definition["effective_to"])
            if definition.get("effective_to")
            else None
        ),
        definition=definition,
        criteria=criteria,
        fingerprint=fingerprint(definition),
    )


# --- building criteria from their definitions ----------------------------------------------


def _criterion(
    raw: dict[str, Any], params: dict[str, Any], settings: dict[str, Any], source: str, path: str
) -> Criterion:
    when = raw["pass_when"]
    branch_lists = when["any"] if isinstance(when, dict) else [when]
    branches = []
    for b, conditions in enumerate(branch_lists):
        bpath = f"{path}.pass_when" + (f".any[{b}]" if isinstance(when, dict) else "")
        branches.append(
            tuple(
                _condition(c, params, settings, source, f"{bpath}[{i}]")
                for i, c in enumerate(conditions)
            )
        )
    return Criterion(
        id=raw["id"],
        on_fail=raw["on_fail"],
        description=dict(raw["description"]),
        reference=raw["reference"],
        branches=tuple(branches),
    )


def _entitlement(
    raw: dict[str, Any], params: dict[str, Any], settings: dict[str, Any], source: str, path: str
) -> Entitlement:
    conditions = tuple(
        _condition(c, params, settings, source, f"{path}.pass_when[{i}]")
        for i, c in enumerate(raw["pass_when"])
    )
    spec = raw["amount_cny"]
    table = _param(params, spec["param"], source, f"{path}.amount_cny.param")
    if not isinstance(table, dict):
        raise RuleFileError(source, f"{path}.amount_cny", "amounts must be a table by key")
    _fact_type(spec["key"], source, f"{path}.amount_cny.key")
    return Entitlement(
        id=raw["id"],
        description=dict(raw["description"]),
        reference=raw["reference"],
        branches=(conditions,),
        amount=Lookup(tuple(sorted(table.items())), spec["key"], "amount_cny"),
    )


def _fact_type(name: str, source: str, path: str) -> FactType:
    if name not in FACTS:
        known = ", ".join(sorted(FACTS))
        raise RuleFileError(source, path, f"unknown fact {name!r} (known facts: {known})")
    return FACTS[name].type


def _param(params: dict[str, Any], name: str, source: str, path: str) -> Any:
    if name not in params:
        raise RuleFileError(source, path, f"parameter {name!r} is not defined for this version")
    return params[name]


def _condition(
    raw: dict[str, Any], params: dict[str, Any], settings: dict[str, Any], source: str, path: str
) -> Condition:
    fact_type = _fact_type(raw["fact"], source, f"{path}.fact")
    # The schema allows exactly one operator, one of OPS.
    op = cast(Op, next(k for k in raw if k != "fact"))
    opath = f"{path}.{op}"
    operand = _operand(raw[op], fact_type, params, settings, source, opath)

    def bad(reason: str) -> RuleFileError:
        return RuleFileError(source, opath, reason)

    if op in ("in", "not_in"):
        if not (isinstance(operand, Const) and isinstance(operand.value, tuple)):
            raise bad(f"{op} needs a list of values")
    elif op in ("starts_with", "not_starts_with"):
        if fact_type != "str":
            raise bad(f"{op} needs a text fact, {raw['fact']!r} is {fact_type}")
        if not (isinstance(operand, Const) and isinstance(operand.value, str)):
            raise bad(f"{op} needs a fixed prefix")
        if not PREFIX.match(operand.value):
            raise bad("a prefix may hold only letters and digits")
    elif op in ORDERED and fact_type not in ("int", "date"):
        raise bad(f"{op} needs a number or date fact, {raw['fact']!r} is {fact_type}")
    elif isinstance(operand, Const) and isinstance(operand.value, tuple):
        raise bad(f"{op} compares with one value, not a list")
    return Condition(fact=raw["fact"], op=op, operand=operand)


def _operand(
    raw: Any,
    fact_type: FactType,
    params: dict[str, Any],
    settings: dict[str, Any],
    source: str,
    path: str,
) -> Operand:
    def bad(reason: str) -> RuleFileError:
        return RuleFileError(source, path, reason)

    if not isinstance(raw, dict):
        value = tuple(raw) if isinstance(raw, list) else raw
        return Const(_typed(value, fact_type, bad))
    if "fact" in raw:
        other = _fact_type(raw["fact"], source, f"{path}.fact")
        if other != fact_type:
            raise bad(f"compares a {fact_type} fact with {raw['fact']!r}, a {other} fact")
        return FactRef(raw["fact"])
    if "setting" in raw:
        return Const(settings[raw["setting"]])
    if "param" in raw:
        value = _param(params, raw["param"], source, f"{path}.param")
        if "key" not in raw:
            if isinstance(value, dict):
                raise bad(f"parameter {raw['param']!r} is a table: say which `key` to look up")
            value = _typed(tuple(value) if isinstance(value, list) else value, fact_type, bad)
            return Const(value, raw.get("as"))
        if not isinstance(value, dict):
            raise bad(f"parameter {raw['param']!r} is not a table to look up by key")
        _fact_type(raw["key"], source, f"{path}.key")
        if fact_type != "int":
            raise bad("table parameters hold numbers; compare them with a number fact")
        return Lookup(tuple(sorted(value.items())), raw["key"], str(raw.get("as", raw["param"])))
    spec = raw["date_add"]
    if _fact_type(spec["fact"], source, f"{path}.date_add.fact") != "date" or fact_type != "date":
        raise bad("date_add works on date facts and compares with a date fact")
    years = spec["years"]
    if isinstance(years, dict):
        years = _param(params, years["param"], source, f"{path}.date_add.years.param")
    if not isinstance(years, int) or isinstance(years, bool):
        raise bad("date_add needs a whole number of years")
    return DateAdd(spec["fact"], years, raw.get("as", f"{spec['fact']}_plus_{years}y"))


def _typed(value: Any, fact_type: FactType, bad: Any) -> Any:
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        ok = {
            "bool": isinstance(item, bool),
            "int": isinstance(item, int) and not isinstance(item, bool),
            "str": isinstance(item, str),
            "date": isinstance(item, str) and _is_date(item),
        }[fact_type]
        if not ok:
            raise bad(f"{item!r} is not a {fact_type} value")
    if fact_type == "date":
        return (
            tuple(map(date.fromisoformat, items))
            if isinstance(value, tuple)
            else date.fromisoformat(value)
        )
    return value


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --- reading rule files ----------------------------------------------------------------------

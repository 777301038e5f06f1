"""Rule files → validated, self-contained rulesets (one per business type and version).

A ruleset is built from its *definition*: plain JSON data holding everything that decides an
outcome (criteria, parameters, the city prefix). Its fingerprint is the SHA-256 of that
definition's canonical JSON, and the definition is stored with the first decision that uses
it, so a decision can be replayed after the rule files have changed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml

from miaopi.adapters.ports import RegistryName
from miaopi.domain import BusinessType, OnFail
from miaopi.eligibility.supervision_terms import SupervisionTerms, TermsError
from miaopi.evidence.facts import FACTS, FactType, Query

# Bump when the meaning of the rule language changes, so old fingerprints stay honest.
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
_ORDERED = {"lt", "lte", "gt", "gte"}
_PREFIX = re.compile(r"^[0-9A-Za-z]+$")


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

    @classmethod
    def from_definition(
        cls,
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
        return cls(
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


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(definition: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(definition)).hexdigest()


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
    op: Op = next(k for k in raw if k != "fact")  # the schema allows exactly one operator
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
        if not _PREFIX.match(operand.value):
            raise bad("a prefix may hold only letters and digits")
    elif op in _ORDERED and fact_type not in ("int", "date"):
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
        return Lookup(tuple(sorted(value.items())), raw["key"], raw.get("as", raw["param"]))
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


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay text until the schema has checked them."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(
        resources.files("miaopi.eligibility").joinpath("rule-file.schema.json").read_text()
    )
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def read_rule_file(path: Path) -> dict[str, Any]:
    """A rule file's data, checked against the schema."""
    name = str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RuleFileError(name, "", f"cannot be read as YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleFileError(name, "", "must be a mapping")
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise RuleFileError(name, _path(best.absolute_path), best.message)
    return data


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in rules_dir.glob("*.yaml") if p.is_file())


def build_rulesets(rules_dir: Path, city_prefix: str) -> list[Ruleset]:
    """Every version of every business type defined in ``rules_dir``, validated."""
    if not rules_dir.is_dir():
        raise RuleFileError(str(rules_dir), "", "rules directory does not exist")
    files = {p: read_rule_file(p) for p in rule_files(rules_dir)}
    commons = [(p, d) for p, d in files.items() if d["kind"] == "common"]
    if len(commons) > 1:
        raise RuleFileError(str(commons[1][0]), "kind", "only one common rule file is allowed")
    common = commons[0] if commons else None
    seen_types: dict[str, Path] = {}
    rulesets: list[Ruleset] = []
    for path, data in files.items():
        if data["kind"] != "business_type":
            continue
        btype = data["business_type"]
        if btype in seen_types:
            raise RuleFileError(
                str(path), "business_type", f"{btype} is also defined in {seen_types[btype]}"
            )
        seen_types[btype] = path
        rulesets.extend(_versions(path, data, common, city_prefix))
    return rulesets


def _versions(
    path: Path,
    data: dict[str, Any],
    common: tuple[Path, dict[str, Any]] | None,
    city_prefix: str,
) -> list[Ruleset]:
    name = str(path)
    includes = data.get("include", [])
    if includes and common is None:
        raise RuleFileError(name, "include", "includes `common` but there is no common rule file")
    common_path, common_data = common if includes and common else (None, {})
    shared_criteria = common_data.get("criteria", [])
    shared_params = common_data.get("parameters") or {}
    origins = [(str(common_path), i) for i in range(len(shared_criteria))] + [
        (name, i) for i in range(len(data["criteria"]))
    ]
    versions = sorted(data["versions"], key=lambda v: v["effective_from"])
    out = []
    for i, version in enumerate(versions):
        vpath = f"versions[{data['versions'].index(version)}]"
        start = date.fromisoformat(version["effective_from"])
        end = date.fromisoformat(version["effective_to"]) if "effective_to" in version else None
        if end is not None and end < start:
            raise RuleFileError(name, f"{vpath}.effective_to", "ends before it starts")
        if i + 1 < len(versions):
            nxt = date.fromisoformat(versions[i + 1]["effective_from"])
            if end is None or end >= nxt:
                raise RuleFileError(
                    name, f"{vpath}.effective_to", f"overlaps version {versions[i + 1]['version']}"
                )
        definition = {
            "semantics": SEMANTICS_VERSION,
            "business_type": data["business_type"],
            "title": data["title"],
            "version": version["version"],
            "effective_from": version["effective_from"],
            "effective_to": version.get("effective_to"),
            "reference": version["reference"],
            "parameters": {**shared_params, **version["parameters"]},
            "settings": {"city_prefix": city_prefix},
            "criteria": [*shared_criteria, *data["criteria"]],
            "entitlements": data.get("entitlements", []),
        }
        try:
            ruleset = Ruleset.from_definition(definition, source=name, origins=origins)
            try:
                ruleset.supervision  # noqa: B018 - parsed here so bad terms fail the load
            except TermsError as exc:
                root = exc.parameter.split(".")[0]
                where = name if root in version["parameters"] else str(common_path or name)
                raise RuleFileError(where, f"parameters.{exc.parameter}", exc.reason) from exc
            out.append(ruleset)
        except RuleFileError as exc:
            # Parameters come from the version, so say which version the problem showed in.
            raise RuleFileError(
                exc.file,
                exc.path,
                f"{exc.reason} (in {name} {vpath}, version {version['version']})",
            ) from exc
    return out


@dataclass(frozen=True)
class RuleBook:
    """Every loaded ruleset, by business type and by fingerprint."""

    rulesets: tuple[Ruleset, ...]
    source: str = ""

    @classmethod
    def load(cls, rules_dir: Path, city_prefix: str) -> RuleBook:
        return cls(tuple(build_rulesets(rules_dir, city_prefix)), str(rules_dir))

    def business_types(self) -> list[str]:
        return sorted({r.business_type for r in self.rulesets})

    def versions(self, business_type: str) -> list[Ruleset]:
        return sorted(
            (r for r in self.rulesets if r.business_type == business_type),
            key=lambda r: r.effective_from,
        )

    def in_force(self, business_type: str, day: date) -> Ruleset | None:
        return next((r for r in self.versions(business_type) if r.covers(day)), None)

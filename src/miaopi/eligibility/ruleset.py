"""Rule files → validated, self-contained rulesets (one per business type and version).

Each file is checked against its JSON Schema, then built (``build.py``) into the objects of
``model.py``; the rule book holds every version loaded, by business type and fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from miaopi.eligibility.build import ruleset_of
from miaopi.eligibility.model import SEMANTICS_VERSION, RuleFileError, Ruleset
from miaopi.supervision.terms import TermsError


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
            ruleset = ruleset_of(definition, source=name, origins=origins)
            ruleset = replace(ruleset, required_claims=tuple(map(tuple, data["claims"])))
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


def second_try_schedule(rules_dir: Path) -> tuple[int, ...]:
    """Minutes after a referral at which it is decided again (policy §9; ``common.yaml``)."""
    for path in rule_files(rules_dir):
        data = read_rule_file(path)
        if data["kind"] != "common":
            continue
        minutes = tuple(data.get("second_try_after_minutes", ()))
        if list(minutes) != sorted(set(minutes)):
            raise RuleFileError(str(path), "second_try_after_minutes", "must be ascending")
        return minutes
    return ()


def business_type_titles(rules_dir: Path) -> dict[str, dict[str, str]]:
    """Each business type's title in Chinese and English, as its rule file gives it."""
    titles: dict[str, dict[str, str]] = {}
    for path in rule_files(rules_dir):
        data = read_rule_file(path)
        if data["kind"] == "business_type":
            titles[data["business_type"]] = dict(data.get("title") or {})
    return titles


@dataclass(frozen=True)
class RuleBook:
    """Every loaded ruleset, by business type and by fingerprint, and the second tries'
    schedule (minutes after a referral; outside every ruleset and its fingerprint)."""

    rulesets: tuple[Ruleset, ...]
    source: str = ""
    second_try_after_minutes: tuple[int, ...] = ()
    titles: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, rules_dir: Path, city_prefix: str) -> RuleBook:
        rulesets = tuple(build_rulesets(rules_dir, city_prefix))
        return cls(
            rulesets, str(rules_dir), second_try_schedule(rules_dir),
            business_type_titles(rules_dir),
        )  # fmt: skip

    def descriptions(self, business_type: str) -> dict[str, dict[str, str]]:
        """Each criterion's description in Chinese and English, by id, as the latest version
        of the business type words it (a criterion's meaning does not change with its
        version: a new meaning is a new criterion)."""
        found: dict[str, dict[str, str]] = {}
        for version in self.versions(business_type):
            found.update({c.id: c.description for c in version.criteria})
        return found

    def title(self, business_type: str) -> dict[str, str]:
        return self.titles.get(business_type) or {"zh": business_type, "en": business_type}

    def business_types(self) -> list[str]:
        return sorted({r.business_type for r in self.rulesets})

    def required_claims(self, business_type: str) -> tuple[tuple[str, ...], ...] | None:
        """What an application of the type must claim; None for a type no file defines."""
        versions = self.versions(business_type)
        return versions[-1].required_claims if versions else None

    def versions(self, business_type: str) -> list[Ruleset]:
        return sorted(
            (r for r in self.rulesets if r.business_type == business_type),
            key=lambda r: r.effective_from,
        )

    def in_force(self, business_type: str, day: date) -> Ruleset | None:
        return next((r for r in self.versions(business_type) if r.covers(day)), None)

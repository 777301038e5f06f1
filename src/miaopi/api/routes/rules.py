"""The rules in force, as published: what a citizen or an HR department needs to read them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from miaopi.api.deps import Admin, ContainerDep, CurrentClient
from miaopi.api.errors import Problem, invalid
from miaopi.api.routes.applications import PROBLEMS
from miaopi.api.schemas import BusinessTypeName, ReloadOut, RuleSetDetail, RuleSetList
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.bootstrap import RulesRefused
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.eligibility.model import Ruleset

router = APIRouter(prefix="/v1", tags=["rules"], route_class=StrictJsonRoute)


def _version(r: Ruleset, today: date) -> dict[str, Any]:
    return {
        "version": r.version,
        "effective_from": r.effective_from,
        "effective_to": r.effective_to,
        "fingerprint": r.fingerprint,
        "in_force": r.covers(today),
    }


@router.get(
    "/rules", response_model=RuleSetList, responses=PROBLEMS, summary="Rule sets and versions"
)
async def list_rules(_: CurrentClient, container: ContainerDep) -> Any:
    today = today_in_shanghai(container.clock())
    book = container.rulebook
    return {
        "items": [
            {
                "business_type": bt,
                "title": book.versions(bt)[0].title,
                "versions": [_version(r, today) for r in book.versions(bt)],
            }
            for bt in book.business_types()
        ]
    }


@router.get(
    "/rules/{business_type}",
    response_model=RuleSetDetail,
    responses=PROBLEMS,
    summary="The criteria and parameters of the version in force",
)
async def rules_in_force(
    business_type: BusinessTypeName,
    _: CurrentClient,
    container: ContainerDep,
    as_of: Annotated[date | None, Query(description="Default today (Asia/Shanghai)")] = None,
) -> Any:
    if business_type not in container.rulebook.business_types():
        raise invalid(["path", "business_type"], "no rule file defines this business type")
    day = as_of or today_in_shanghai(container.clock())
    ruleset = container.rulebook.in_force(business_type, day)
    if ruleset is None:
        raise Problem(404, f"no {business_type} rules are in force on {day.isoformat()}")
    definition = ruleset.definition
    return {
        "business_type": business_type,
        "title": ruleset.title,
        **_version(ruleset, day),
        "reference": ruleset.reference,
        "parameters": ruleset.parameters,
        "city_prefix": definition["settings"]["city_prefix"],
        "criteria": [
            {
                "id": c.id,
                "on_fail": c.on_fail,
                "description": c.description,
                "reference": c.reference,
                "registries": list(c.registries),
                "facts": list(c.facts),
                "pass_when": raw["pass_when"],
            }
            for c, raw in zip(ruleset.criteria, definition["criteria"], strict=True)
        ],
    }


@router.post(
    "/rules:reload",
    response_model=ReloadOut,
    responses=PROBLEMS,
    summary="Load changed rule files without a restart (this instance)",
)
async def reload_rules(_: Admin, container: ContainerDep) -> Any:
    before = {r.fingerprint for r in container.rulebook.rulesets}
    try:
        book = await container.reload_rules()
    except RulesRefused as exc:
        raise Problem(
            422,
            "the new rule files were refused; the rules in force are unchanged",
            slug="rules-refused",
            errors=[{"loc": ["rules"], "msg": reason} for reason in exc.reasons],
        ) from None
    after = {r.fingerprint for r in book.rulesets}
    return {
        "changed": before != after,
        "rulesets": [r.summary() for r in book.rulesets],
    }

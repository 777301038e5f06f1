"""The authority's pages: the dashboard from the figures of ``GET /v1/stats``, API clients,
the rules in force with a side-by-side diff of two versions, and the registries' health."""

from __future__ import annotations

import difflib
import json
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from miaopi.api.errors import as_problem
from miaopi.console.auth import form_of, session_for
from miaopi.console.charts import bars, stacked_days
from miaopi.console.i18n import translations
from miaopi.console.pages import language, render
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records import access_log, stats
from miaopi.records import clients as client_records
from miaopi.supervision import tasks
from miaopi.usecases import clients
from miaopi.usecases.errors import UseCaseError

router = APIRouter(prefix="/console", include_in_schema=False)
GROUPS = ("business_type", "district", "employer")
SHOWN_GROUPS = 20  # the groups with most applications; the API gives them all
HEALTH_WINDOW = 1_000  # the last registry queries the error rate is counted over


def _day(text: str, default: date) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return default


@router.get("/dashboard")
async def dashboard(
    request: Request, start: str = "", end: str = "", group_by: str = "business_type"
) -> Response:
    session = await session_for(request, "admin")
    container = request.app.state.container
    today = today_in_shanghai(container.clock())
    last = _day(end, today)
    first = min(_day(start, last - timedelta(days=29)), last)
    first = max(first, last - timedelta(days=365))
    group = group_by if group_by in GROUPS else "business_type"
    found = await container.database.run_in_thread(stats.figures, first, last, group, today)
    waiting = await container.database.run(tasks.waiting_count)
    failures = await container.database.run_in_thread(access_log.recent_failures, HEALTH_WINDOW)
    _ = translations(language(request)).gettext
    names = {"approved": _("Approved"), "rejected": _("Rejected"), "referred": _("Referred")}
    groups = sorted(found["groups"].items(), key=lambda kv: -kv[1]["applications"])
    return render(
        request, "dashboard.html", session=session, totals=found["totals"],
        groups=groups[:SHOWN_GROUPS], group_count=len(groups),
        group_by=group, start=first.isoformat(), end=last.isoformat(),
        per_day=found["per_day"], reasons=found["referral_reasons"], unassigned=waiting,
        days_chart=stacked_days(found["per_day"], _("Applications per day"), names),
        reasons_chart=bars([(r["criterion"], r["count"]) for r in found["referral_reasons"]],
                           _("Top referral reasons")),
        health=_registry_health(container.breaker_states(), failures), window=HEALTH_WINDOW,
    )  # fmt: skip


def _registry_health(
    states: dict[str, str], counted: dict[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Each registry's circuit breaker as this instance sees it, and the share of the last
    queries (of every instance, as recorded) that had no answer or an unreadable one."""
    found = []
    for name in sorted(states):
        asked, failed = counted.get(name, (0, 0))
        found.append({"registry": name, "state": states[name], "asked": asked,
                      "error_rate": failed / asked if asked else None})  # fmt: skip
    return found


@router.get("/clients")
async def client_list(request: Request) -> Response:
    session = await session_for(request, "admin")
    return await _clients_page(request, session)


async def _clients_page(request: Request, session: Any, status: int = 200, **more: Any) -> Response:
    container = request.app.state.container
    rows = await container.database.run(client_records.listed)
    return render(request, "clients.html", status=status, session=session, rows=rows, **more)


@router.post("/clients")
async def client_create(request: Request) -> Response:
    session = await session_for(request, "admin")
    form = await form_of(request, session)
    container = request.app.state.container
    role, name = form.get("role", ""), form.get("name", "")
    uscc, district = form.get("uscc") or None, form.get("district") or None
    try:
        client, key, _ = await container.database.run(
            lambda engine: clients.create(engine, role, name, uscc, district, container.clock())
        )
    except UseCaseError as exc:
        return await _clients_page(request, session, as_problem(exc).status, error=str(exc))
    # The key is shown this once; the page is not cached (Cache-Control: no-store).
    return await _clients_page(request, session, 201, created=client, key=key)


@router.post("/clients/{prefix}/revoke")
async def client_revoke(request: Request, prefix: str) -> Response:
    session = await session_for(request, "admin")
    await form_of(request, session)
    container = request.app.state.container
    try:
        client, _ = await container.database.run(
            lambda engine: clients.revoke(engine, prefix, container.clock())
        )
    except UseCaseError as exc:
        return await _clients_page(request, session, as_problem(exc).status, error=str(exc))
    return await _clients_page(request, session, revoked=client)


@router.get("/rules")
async def rules(
    request: Request, business_type: str = "", left: str = "", right: str = ""
) -> Response:
    session = await session_for(request, "admin")
    book = request.app.state.container.rulebook
    kinds = book.business_types()
    kind = business_type if business_type in kinds else kinds[0]
    versions = book.versions(kind)
    by_name = {v.version: v for v in versions}
    diff = None
    if left in by_name and right in by_name and left != right:

        def lines(version: str) -> list[str]:
            return json.dumps(by_name[version].definition, indent=2, ensure_ascii=False,
                              sort_keys=True).splitlines()  # fmt: skip

        diff = difflib.HtmlDiff(wrapcolumn=60).make_table(
            lines(left), lines(right), left, right, context=True, numlines=2
        )
    return render(request, "rules.html", session=session, kinds=kinds, kind=kind,
                  versions=versions, titles=book.titles, left=left, right=right,
                  diff=diff)  # fmt: skip

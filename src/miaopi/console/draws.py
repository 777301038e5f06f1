"""The month's spot-check draw for auditors and the admin (policy §8, 双随机一公开): what was
drawn, at which rates, the seed's commitment while the month runs and the seed once it has
ended, every draw recomputed from it here, and the documents to check it elsewhere.

The period's JSON and the samples CSV are the API's own documents (``api.period_documents``).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from miaopi.api.period_documents import period_document, samples_csv
from miaopi.console.auth import session_for
from miaopi.console.pages import HEADERS, render
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.supervision import tasks
from miaopi.supervision.draw import has_ended, is_selected, parse_period, period_of, seed_commitment
from miaopi.usecases.access import own_tasks

router = APIRouter(prefix="/console", include_in_schema=False)
SHOWN = 500  # the drawn cases listed on the page; the JSON has every approval


def _summary(engine: Any, period: str, ended: bool) -> dict[str, Any]:
    """The period's draws read once: counts, rates, the drawn cases, and (when the seed is
    published) how many draws the seed gives otherwise than recorded."""
    seed = tasks.period_seed(engine, period)
    approvals, disagree = 0, 0
    drawn: list[Any] = []
    rates: dict[tuple[str, str], list[int]] = {}
    for batch in tasks.period_draws(engine, period):
        for d in batch:
            approvals += 1
            rate = rates.setdefault((d.risk_class or "—", d.rate), [0, 0])
            rate[0] += 1
            if d.selected:
                rate[1] += 1
                drawn.append(d)
            if ended and seed and is_selected(seed, d.case_id, d.rate) != d.selected:
                disagree += 1
    listed = [{"risk_class": c, "rate": r, "approvals": n, "drawn": k}
              for (c, r), (n, k) in sorted(rates.items())]  # fmt: skip
    return {
        "seed": seed if ended else None,
        "commitment": seed_commitment(seed) if seed else None,
        "approvals": approvals,
        "drawn": drawn[:SHOWN],
        "drawn_count": len(drawn),
        "rates": listed,
        "disagree": disagree,
    }


def _period_asked(request: Request, period: str) -> tuple[str, bool]:
    """(the period, whether it is well formed); this month when none is asked."""
    today = today_in_shanghai(request.app.state.container.clock())
    if not period:
        return period_of(today), True
    try:
        parse_period(period)
    except ValueError:
        return period, False
    return period, True


@router.get("/draws")
async def draw_page(request: Request, period: str = "") -> Response:
    session = await session_for(request, "auditor", "admin")
    container = request.app.state.container
    period, valid = _period_asked(request, period)
    if not valid:
        return render(request, "draws.html", status=422, session=session, period=period,
                      error="period")  # fmt: skip
    ended = has_ended(period, today_in_shanghai(container.clock()))
    summary = await run_in_threadpool(_summary, container.database.engine, period, ended)
    return render(request, "draws.html", session=session, period=period, ended=ended,
                  shown=SHOWN, **summary)  # fmt: skip


@router.get("/draws/{period}/period.json")
async def draw_document(request: Request, period: str) -> Response:
    return await _streamed(request, period, "json")


@router.get("/draws/{period}/samples.csv")
async def samples(request: Request, period: str) -> Response:
    return await _streamed(request, period, "csv")


async def _streamed(request: Request, period: str, kind: str) -> Response:
    session = await session_for(request, "auditor", "admin")
    container = request.app.state.container
    if not _period_asked(request, period)[1]:
        return render(request, "draws.html", status=422, session=session, period=period,
                      error="period")  # fmt: skip
    if kind == "json":
        document = period_document(container, period)
        media_type, name = "application/json", f"draw-{period}.json"
    else:
        document = samples_csv(container, own_tasks(session.client), period)
        media_type, name = "text/csv; charset=utf-8", f"samples-{period}.csv"
    head = await run_in_threadpool(next, document)
    return StreamingResponse(
        chain([head], document), media_type=media_type,
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip

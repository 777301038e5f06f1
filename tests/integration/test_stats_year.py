"""The authority's figures over a generated year (the bench's own year, small), checked against
the same figures counted here case by case from the rows: the one SQL pass over the cases and
the joins of referred cases only must give what a plain reading of every case gives."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select

from miaopi.records.engines import make_engine
from miaopi.records.migrate import upgrade
from miaopi.records.sealing import DataKey
from miaopi.records.stats import figures
from miaopi.records.tables import cases, reviews, second_tries
from tests.conftest import DATA_KEY, load_script

bench = load_script("bench/stats.py")

FIRST, LAST, TODAY = date(2026, 1, 1), date(2026, 12, 31), date(2026, 7, 1)


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    # One database for the module's tests: filling it is the slow part.
    from tests.conftest import database_url

    generator = database_url.__wrapped__(tmp_path_factory.mktemp("year"))  # type: ignore[attr-defined]
    url = next(generator)
    engine = make_engine(url, DataKey(DATA_KEY))
    upgrade(engine)
    bench._fill(engine, 3_000, FIRST, seed=11)
    yield engine
    engine.dispose()
    next(generator, None)


def _quantile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    at = (len(ordered) - 1) * p
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _by_hand(engine: Engine, group: str | None) -> dict[str, dict[str, Any]]:
    """Every case read once, its later decisions looked up in dictionaries."""
    with engine.connect() as conn:
        rows = conn.execute(select(cases.c.id, cases.c.outcome, cases.c.status,
                                   cases.c.business_type, cases.c.employer_region,
                                   cases.c.employer_uscc, cases.c.elapsed_ms,
                                   cases.c.submitted_at)).all()  # fmt: skip
        tries = {t.case_id: t for t in conn.execute(select(second_tries)).all()
                 if t.outcome in ("approved", "rejected")}  # fmt: skip
        counter = {r.case_id: r for r in conn.execute(select(reviews)).all()}
    column = {None: None, "business_type": "business_type", "district": "employer_region",
              "employer": "employer_uscc"}[group]  # fmt: skip
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "applications": 0, "first": Counter(), "second_try": 0, "reviews": Counter(),
        "seconds": [], "review_seconds": []})  # fmt: skip
    for case in rows:
        slots = [out["(total)"]] + ([out[getattr(case, column)]] if column else [])
        tried, review = tries.get(case.id), counter.get(case.id)
        seconds = None
        if case.outcome != "referred":
            seconds = case.elapsed_ms / 1000.0
        elif tried is not None:
            seconds = (tried.decided_at - case.submitted_at).total_seconds()
        elif review is not None and review.status == "closed":
            seconds = (review.decided_at - case.submitted_at).total_seconds()
        for slot in slots:
            slot["applications"] += 1
            slot["first"][case.outcome] += 1
            slot["second_try"] += bool(tried and tried.approval_number)
            if review is not None:
                slot["reviews"]["opened"] += 1
                if review.status == "closed":
                    slot["reviews"][review.outcome] += 1
                    slot["review_seconds"].append(
                        (review.decided_at - review.created_at).total_seconds()
                    )
                else:
                    slot["reviews"]["overdue"] += review.due_date < TODAY
            if seconds is not None:
                slot["seconds"].append(seconds)
    return out


def _quantiles_agree(found: dict[str, float] | None, seconds: list[float]) -> None:
    if not seconds:  # nothing to time yet
        assert found is None
        return
    assert found is not None
    for p in (0.5, 0.95):
        assert found[f"p{round(p * 100)}"] == pytest.approx(_quantile(seconds, p), abs=0.001)


def _compared(found: dict[str, Any], expected: dict[str, Any]) -> None:
    assert found["applications"] == expected["applications"]
    assert found["first_decision"] == {o: expected["first"][o]
                                       for o in ("approved", "rejected", "referred")}  # fmt: skip
    assert found["approved_by_second_try"] == expected["second_try"]
    for name in ("opened", "approved", "rejected", "overdue"):
        assert found["reviews"][name] == expected["reviews"][name], name
    _quantiles_agree(found["time_to_decision_s"], expected["seconds"])
    _quantiles_agree(found["reviews"]["time_s"], expected["review_seconds"])


@pytest.mark.parametrize("group", [None, "business_type", "district", "employer"])
def test_the_figures_agree_with_every_case_counted_by_hand(year: Engine, group: Any) -> None:
    answer = figures(year, FIRST, LAST, group, TODAY)
    expected = _by_hand(year, group)
    assert expected["(total)"]["second_try"] > 0
    assert expected["(total)"]["reviews"]["overdue"] > 0  # every figure has something to count
    _compared(answer["totals"], expected["(total)"])
    if group is None:
        assert answer["groups"] == {}
        return
    assert set(answer["groups"]) == set(expected) - {"(total)"}
    for key, found in answer["groups"].items():
        _compared(found, expected[key])

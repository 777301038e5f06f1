"""The authority's figures (policy §12), counted from the recorded cases in SQL: they survive
restarts and agree across instances.

The cohort is the applications of the period (by application date, the day in Asia/Shanghai).
What happened to them is counted whenever it happened: approvals automatic, by a second try or
at the counter; referral reasons; counter reviews and audit tasks with those still open and
overdue today. Revocations, online certificate checks and household registrations are counted
on the day they happened, within the period. A counter review's time runs from the referral to
the counter's decision. With a ``group_by`` every figure is also given per business type,
district or employer (the case's).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, and_, case, func, literal, select, text, union_all

from miaopi.eligibility.dates import SHANGHAI
from miaopi.records.certificate_tables import case_stages
from miaopi.records.engines import reading
from miaopi.records.report_tables import certificate_checks, referral_reasons
from miaopi.records.tables import audit_tasks, cases, reviews, second_tries

GroupBy = Literal["business_type", "district", "employer"]
_REFERRED = cases.c.outcome == "referred"
_KEYS = {
    "business_type": cases.c.business_type,
    "district": cases.c.employer_region,
    "employer": cases.c.employer_uscc,
}
ALL = "all"
TOTAL = "(total)"  # the totals' own quantiles beside a grouping's (no key has parentheses)
PARALLEL_QUERIES = 2  # the queries, at once (more gained nothing on two cores)


def _seconds(dialect: str, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _percentiles(
    dialect: str, rows: Any, q: tuple[float, ...]
) -> tuple[Any, Callable[[list[Any]], dict[str, dict[str, float]]]]:
    """A query and what makes of its rows, per key, the ``q`` quantiles (linear
    interpolation) of the rows' ``seconds``: PostgreSQL computes them, SQLite's are sorted
    here."""
    if dialect == "postgresql":
        columns = [func.percentile_cont(p).within_group(rows.c.seconds) for p in q]
        # Each key's, and everyone's (the key NULL), from one reading of the rows.
        both = text("GROUPING SETS ((key), ())")

        def computed(found: list[Any]) -> dict[str, dict[str, float]]:
            return {TOTAL if k is None else str(k): _named(dict(zip(q, map(float, v), strict=True)))
                    for k, *v in found if None not in v}  # no rows: the grand total's are NULL

        return select(rows.c.key, *columns).group_by(both), computed

    def sorted_here(found: list[Any]) -> dict[str, dict[str, float]]:
        per_key: dict[str, list[float]] = defaultdict(list)
        for key, seconds in found:
            per_key[str(key)].append(float(seconds))
            per_key[TOTAL].append(float(seconds))
        return {k: _named({p: _interpolated(sorted(v), p) for p in q}) for k, v in per_key.items()}

    return select(rows.c.key, rows.c.seconds), sorted_here


def _named(values: dict[float, float]) -> dict[str, float]:
    return {f"p{round(p * 100)}": round(v, 3) for p, v in values.items()}


def _rows(engine: Engine, query: Any) -> list[Any]:
    with reading(engine) as conn:
        if conn.dialect.name == "postgresql":
            # For these reads only: PostgreSQL's JIT compiled each query for longer than it
            # then ran (0.16 s of 0.74), a year's times sorted on disk past 4 MB, and the
            # default cost of a random page (a disk's) kept it from reading the narrow
            # covering index instead of the cases' wide rows, all of which are in memory.
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
        return list(conn.execute(query))


def _interpolated(values: list[float], p: float) -> float:
    at = (len(values) - 1) * p
    low, high = math.floor(at), math.ceil(at)
    return values[low] + (values[high] - values[low]) * (at - low)


def figures(
    engine: Engine, first: date, last: date, group_by: GroupBy | None, today: date
) -> dict[str, Any]:
    key = (_KEYS[group_by] if group_by else literal(ALL)).label("key")
    since = datetime.combine(first, time(), SHANGHAI)  # the period's instants, for events
    until = datetime.combine(last + timedelta(days=1), time(), SHANGHAI)
    cohort = and_(cases.c.application_date >= first, cases.c.application_date <= last)
    out: dict[str, dict[str, Any]] = defaultdict(_empty)
    dialect = engine.dialect.name
    n = func.count().label("n")
    jobs: list[tuple[Any, Callable[[list[Any]], None]]] = []

    def counted(*path: str) -> Callable[[list[Any]], None]:
        def handle(rows: list[Any]) -> None:
            for row in rows:
                slot = out[str(row.key)]
                for name in path[:-1]:
                    slot = slot[name]
                slot[path[-1]] += row.n

        return handle

    def first_decisions(rows: list[Any]) -> None:
        for row in rows:
            slot = out[str(row.key)]
            slot["applications"] += row.n
            slot["first_decision"][row.outcome] += row.n
            slot["status_now"][row.status] += row.n

    def later_decisions(rows: list[Any]) -> None:
        for row in rows:
            slot = out[str(row.key)]
            slot["approved_by_second_try"] += row.n if row.tried_approved else 0
            if row.review_status is None:
                continue
            reviewed = slot["reviews"]
            reviewed["opened"] += row.n
            if row.review_status == "closed":
                reviewed["closed"] += row.n
                reviewed["approved" if row.review_outcome == "approved" else "rejected"] += row.n
            else:
                reviewed["open"] += row.n
                reviewed["overdue"] += row.n if row.review_late else 0

    def audits(rows: list[Any]) -> None:
        for row in rows:
            slot = out[str(row.key)]["audits"][row.kind]
            slot["drawn"] += row.n
            slot["closed" if row.status == "closed" else "open"] += row.n
            slot["overdue"] += row.n if row.late else 0

    # The first decisions from the covering index alone; second tries and counter reviews
    # come only after a referral, so only the referred cases are joined to them.
    tried, settled = _later_decisions()
    initial = (cases.c.outcome, cases.c.status)
    later = (tried.c.approved.label("tried_approved"), reviews.c.status.label("review_status"),
             reviews.c.outcome.label("review_outcome"),
             and_(reviews.c.status != "closed", reviews.c.due_date < today).label("review_late"))
    jobs += [
        (select(key, *initial, n).where(cohort).group_by(key, *initial), first_decisions),
        (select(key, *later, n).select_from(settled).where(cohort, _REFERRED)
         .group_by(key, *later), later_decisions),
        (select(key, audit_tasks.c.kind, audit_tasks.c.status,
                and_(audit_tasks.c.status != "closed",
                     audit_tasks.c.due_date < today).label("late"), n)
         .select_from(cases.join(audit_tasks)).where(cohort)
         .group_by(key, audit_tasks.c.kind, audit_tasks.c.status, "late"), audits),
        # On the day they happened, within the period.
        (select(key, n).where(cases.c.revoked_at >= since, cases.c.revoked_at < until)
         .group_by(key), counted("revocations")),
        # Ungrouped, these need not read the cases at all.
        (select(key, n).select_from(cases.join(case_stages) if group_by else case_stages)
         .where(case_stages.c.stage == "household_registered",
                case_stages.c.on_day >= first, case_stages.c.on_day <= last).group_by(key),
         counted("households_registered")),
        (select(key, n).select_from(
             certificate_checks.outerjoin(cases, cases.c.id == certificate_checks.c.case_id)
             if group_by else certificate_checks)
         .where(certificate_checks.c.checked_at >= since,
                certificate_checks.c.checked_at < until).group_by(key),
         counted("certificates_verified")),
    ]  # fmt: skip
    # Time to the decision that settled the case: the first, a second try's, the counter's.
    quantiles: dict[str, dict[str, float]] = {}
    query, quantiles_of = _percentiles(
        dialect, _settled(dialect, key, cohort, tried, settled), (0.5, 0.95)
    )
    jobs.append((query, lambda rows: quantiles.update(quantiles_of(rows))))
    # A counter review's time: from the referral to the counter's decision.
    review_times: dict[str, dict[str, float]] = {}
    reviewed = (
        select(_sortable(dialect, key),
               _seconds(dialect, reviews.c.created_at, reviews.c.decided_at).label("seconds"))
        .select_from(cases.join(reviews, reviews.c.case_id == cases.c.id))
        .where(cohort, _REFERRED, reviews.c.status == "closed").subquery()
    )  # fmt: skip
    query, review_times_of = _percentiles(dialect, reviewed, (0.5, 0.95))
    jobs.append((query, lambda rows: review_times.update(review_times_of(rows))))
    reasons: list[Any] = []
    days: list[Any] = []
    jobs += [
        (select(referral_reasons.c.criterion, func.count().label("n"))
         .select_from(cases.join(referral_reasons)).where(cohort)
         .group_by(referral_reasons.c.criterion).order_by(func.count().desc()).limit(10),
         reasons.extend),
        (select(cases.c.application_date, cases.c.outcome, func.count().label("n"))
         .where(cohort).group_by(cases.c.application_date, cases.c.outcome)
         .order_by(cases.c.application_date), days.extend),
    ]  # fmt: skip
    # Each query on a connection of its own, at once: together they read the year several
    # times over, and a database server reads them side by side.
    with ThreadPoolExecutor(max_workers=PARALLEL_QUERIES) as pool:
        results = list(pool.map(lambda job: _rows(engine, job[0]), jobs))
    for (_, handle), rows in zip(jobs, results, strict=True):
        handle(rows)
    totals = _empty()
    for slot in out.values():
        _add(totals, slot)
    for k, values in quantiles.items():
        if k == TOTAL:
            totals["time_to_decision_s"] = values
        elif k in out:
            out[k]["time_to_decision_s"] = values
    for k, values in review_times.items():
        if k == TOTAL:
            totals["reviews"]["time_s"] = values
        elif k in out:
            out[k]["reviews"]["time_s"] = values
    return {
        "totals": finished(totals),
        "groups": {k: finished(v) for k, v in out.items()} if group_by else {},
        "referral_reasons": [{"criterion": r.criterion, "count": r.n} for r in reasons],
        "per_day": _per_day(days),
    }


def _later_decisions() -> tuple[Any, Any]:
    """The second try that settled each case (approved or rejected: at most one), and the
    cases joined to it and to their counter review."""
    tried = (
        select(second_tries.c.case_id, second_tries.c.decided_at,
               (second_tries.c.approval_number.is_not(None)).label("approved"))
        .where(second_tries.c.outcome.in_(("approved", "rejected")))
        .subquery("tried")
    )  # fmt: skip
    joined = cases.outerjoin(tried, tried.c.case_id == cases.c.id).outerjoin(
        reviews, reviews.c.case_id == cases.c.id
    )
    return tried, joined


def _sortable(dialect: str, key: Any) -> Any:
    """The key as the quantiles sort it. On PostgreSQL in byte order: that sorts a key by its
    abbreviation, where the database's collation compares every pair of USCCs (which share
    their first digits) in full, and no index in that collation tempts the planner."""
    return key.collate("C").label("key") if dialect == "postgresql" else key


def _settled(dialect: str, key: Any, cohort: Any, tried: Any, joined: Any) -> Any:
    """(key, seconds from submission to the decision that settled the case): the first
    decision's own time, else the settling second try's or the closed review's."""
    later = case(
        (tried.c.decided_at.is_not(None),
         _seconds(dialect, cases.c.submitted_at, tried.c.decided_at)),
        (reviews.c.status == "closed",
         _seconds(dialect, cases.c.submitted_at, reviews.c.decided_at)),
        else_=None,
    )  # fmt: skip
    found = union_all(
        select(_sortable(dialect, key), (cases.c.elapsed_ms / 1000.0).label("seconds"))
        .where(cohort, ~_REFERRED),
        select(_sortable(dialect, key), later.label("seconds")).select_from(joined)
        .where(cohort, _REFERRED),
    ).subquery()
    return select(found.c.key, found.c.seconds).where(found.c.seconds.is_not(None)).subquery()


def _add(total: dict[str, Any], slot: dict[str, Any]) -> None:
    """Add a group's counts into the totals (quantiles are not sums: computed apart)."""
    for name, value in slot.items():
        if isinstance(value, dict):
            _add(total[name], value)
        elif isinstance(value, int):
            total[name] = total.get(name, 0) + value


def _empty() -> dict[str, Any]:
    def audit() -> dict[str, int]:
        return {"drawn": 0, "closed": 0, "open": 0, "overdue": 0}

    return {
        "applications": 0,
        "first_decision": defaultdict(int),
        "status_now": defaultdict(int),
        "approved_by_second_try": 0,
        "reviews": {"opened": 0, "closed": 0, "approved": 0, "rejected": 0, "open": 0,
                    "overdue": 0, "time_s": None},
        "audits": defaultdict(audit),
        "revocations": 0,
        "certificates_verified": 0,
        "households_registered": 0,
        "time_to_decision_s": None,
    }  # fmt: skip


def finished(slot: dict[str, Any]) -> dict[str, Any]:
    """A group's figures as answered: rates computed, every kind named."""
    first = dict(slot["first_decision"])
    instantly = first.get("approved", 0) + slot["approved_by_second_try"]
    decided = slot["applications"]
    audits = {kind: dict(slot["audits"][kind]) for kind in ("spot_check", "recheck", "objection")}
    return {
        **slot,
        "first_decision": {o: first.get(o, 0) for o in ("approved", "rejected", "referred")},
        "status_now": dict(slot["status_now"]),
        "approved_without_a_person": instantly,
        "instant_approval_rate": round(instantly / decided, 4) if decided else None,
        "audits": audits,
    }


def _per_day(rows: Iterable[Any]) -> list[dict[str, Any]]:
    by_day: dict[date, dict[str, int]] = {}
    for day, outcome, n in rows:
        slot = by_day.setdefault(day, {"approved": 0, "rejected": 0, "referred": 0})
        slot[outcome] = slot.get(outcome, 0) + n
    return [{"day": d.isoformat(), "applications": sum(v.values()), **v}
            for d, v in sorted(by_day.items())]  # fmt: skip

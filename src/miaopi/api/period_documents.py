"""A month's spot-check documents, written out as they are read: the period with every draw
(JSON) and its samples (CSV). The API and the console stream the same documents.

A month of graduate season is hundreds of thousands of approvals: built whole, the document was
made on the event loop, all in memory at once, and every decision of the process waited for it
(bench/period.py measures both ways). Each batch is read in a short transaction of its own; the
caller reads the first part in a worker thread, so a database that cannot answer is a 503, not
a broken stream.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from miaopi.api.presenters import task_body
from miaopi.api.spreadsheet import cell
from miaopi.bootstrap import Container
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.supervision import tasks
from miaopi.supervision.draw import has_ended, seed_commitment


def period_document(container: Container, period: str) -> Iterator[str]:
    """The period as ``PeriodOut``: the draws first and what is summed up from them after,
    so each is read once."""
    ended = has_ended(period, today_in_shanghai(container.clock()))
    seed = tasks.period_seed(container.database.engine, period)
    yield (
        _json_fields(
            period=period,
            ended=ended,
            seed=seed if ended else None,
            seed_sha256=seed_commitment(seed) if seed else None,
        )
        + ',"draws":['
    )
    rates: set[tuple[str, str]] = set()
    selected: list[str] = []
    approvals = 0
    for batch in tasks.period_draws(container.database.engine, period):
        draws = []
        for d in batch:
            draws.append({"case_id": d.case_id, "risk_class": d.risk_class, "rate": d.rate,
                          "selected": d.selected})  # fmt: skip
            rates.add((d.risk_class or "", d.rate))
            if d.selected:
                selected.append(d.case_id)
        yield ("," if approvals else "") + json.dumps(draws, separators=(",", ":"))[1:-1]
        approvals += len(draws)
    yield (
        "],"
        + _json_fields(
            rates=[{"risk_class": c or None, "rate": r} for c, r in sorted(rates)],
            approvals=approvals,
            selected=selected,
        )[1:]
        + "}"
    )


def _json_fields(**fields: Any) -> str:
    """An object's opening and its fields, left open for more: ``{"a":1,"b":2``."""
    return json.dumps(fields, separators=(",", ":"))[:-1]


_CSV_COLUMNS = (
    "task_id", "case_id", "status", "due_date", "overdue", "approval_number", "business_type",
    "employer_uscc", "employer_name", "applicant_name", "applicant_id_number", "auditor",
    "auditor_district", "outcome", "reason", "closed_at",
)  # fmt: skip


def samples_csv(container: Container, auditor_id: int | None, period: str) -> Iterator[str]:
    """The samples as CSV: one auditor's, or all of them when ``auditor_id`` is None."""
    today = today_in_shanghai(container.clock())
    batches = tasks.period_samples(container.database.engine, auditor_id, period)
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 (Chinese names) only with a byte-order mark
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    first = next(batches, [])  # read before the answer starts, as the period's seed
    for batch in chain([first], batches):
        for row in batch:
            task = task_body(row, today)
            writer.writerow(
                cell(v)
                for v in (
                    row.id, row.case_id, row.status, row.due_date, task["overdue"],
                    row.approval_number, row.business_type, row.employer_uscc,
                    row.employer_name, row.applicant_name, row.applicant_id_number,
                    row.auditor_name, row.auditor_district, row.outcome, row.reason,
                    row.closed_at,
                )
            )  # fmt: skip
        yield out.getvalue()
        out.seek(0)
        out.truncate()

"""A case's approval number, whichever decision gave it.

An automatic approval's number is on the case; a counter review's is on the review and a
second try's on the attempt, because the case's first decision, hashed in the ledger, is never
rewritten. Every reader that names a case's approval in SQL uses this one expression.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from miaopi.records.tables import cases, reviews, second_tries


def number_of(case_id: Any) -> Any:
    """The approval number of the case whose id is the column ``case_id``, or NULL: in a
    query that reads ``cases``, the case's own row."""
    # The review and the attempts are read on their own even where the enclosing query joins
    # them.
    by_review = (
        select(reviews.c.approval_number)
        .where(reviews.c.case_id == case_id)
        .correlate_except(reviews)
    )
    by_try = (
        select(second_tries.c.approval_number)
        .where(second_tries.c.case_id == case_id, second_tries.c.approval_number.is_not(None))
        .correlate_except(second_tries)
    )
    return func.coalesce(
        cases.c.approval_number, by_review.scalar_subquery(), by_try.scalar_subquery()
    )

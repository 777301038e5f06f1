"""One live approval per person (policy.md §5): the register, its claim and its release."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from miaopi.eligibility.dates import add_years
from miaopi.records.approval_numbers import number_of
from miaopi.records.engines import dialect_insert
from miaopi.records.prepared import Prepared
from miaopi.records.sealing import key_of
from miaopi.records.tables import cases, live_approvals


class LiveApprovalHeld(Exception):
    """The person holds a live approval, recorded by another case (a concurrent one too)."""

    def __init__(self, approval_number: str | None) -> None:
        self.approval_number = approval_number
        super().__init__(approval_number)


def live_expired_on(parameters: dict[str, Any], day: date) -> date | None:
    """An approval on or before this day is no longer live on ``day``, by the rules'
    ``live_approval_years``; None for rules without one person, one live approval."""
    years = parameters.get("live_approval_years")
    return add_years(day, -int(years)) if years is not None else None


# Claimed for every approval (see prepared.py): a row older than the live window is replaced,
# a live one never is, and then nothing is returned.
_CLAIM = Prepared(
    lambda dialect: dialect_insert(dialect)(live_approvals)
    .values(
        id_hash=bindparam("id_hash"),
        case_id=bindparam("case_id"),
        approved_on=bindparam("approved_on"),
    )
    .on_conflict_do_update(
        index_elements=[live_approvals.c.id_hash],
        set_={"case_id": bindparam("case_id"), "approved_on": bindparam("approved_on")},
        where=live_approvals.c.approved_on <= bindparam("expired_on"),
    )
    .returning(live_approvals.c.case_id)
)


def claim(
    conn: Connection, *, id_number: str, case_id: str, approved_on: date, expired_on: date
) -> None:
    """Register this approval as the person's live one, in the transaction that approves.

    ``expired_on``: an approval on or before that day is no longer live. Raises
    ``LiveApprovalHeld`` (the transaction must roll back) when a live one is registered.
    """
    id_hash = key_of(conn.dialect).lookup_hash(id_number)
    params = {"id_hash": id_hash, "case_id": case_id, "approved_on": approved_on,
              "expired_on": expired_on}  # fmt: skip
    if _CLAIM.scalar(conn, params) is None:
        holder = LIVE_OF.first(conn, {"id_hash": id_hash})
        raise LiveApprovalHeld(holder.number if holder is not None else None)


def release(conn: Connection, case_id: str) -> None:
    """A revoked approval is no longer live."""
    conn.execute(delete(live_approvals).where(live_approvals.c.case_id == case_id))


LIVE_OF = Prepared(  # asked for every decision (see prepared.py)
    select(live_approvals.c.approved_on, number_of(cases.c.id).label("number"))
    .select_from(live_approvals.join(cases, cases.c.id == live_approvals.c.case_id))
    .where(live_approvals.c.id_hash == bindparam("id_hash"))
)

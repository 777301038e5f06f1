"""Certificates' records: the signing keys published, certificates issued once, revocations.

A certificate is signed when it is first asked for and stored with its case, in the
transaction of its ``case.certificate_issued`` event; a second request gets the same token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from miaopi.records import events
from miaopi.records.approval_numbers import number_of
from miaopi.records.certificate_tables import certificates, signing_keys
from miaopi.records.engines import reading
from miaopi.records.report_tables import certificate_checks
from miaopi.records.tables import cases, reviews, rulesets, second_tries
from miaopi.records.writing import writing


def publish_key(engine: Engine, kid: str, public_jwk: dict[str, Any], now: datetime) -> None:
    """The key in use is published; every other is retired, and stays published."""
    with writing(engine) as conn:
        known = conn.execute(select(signing_keys.c.kid).where(signing_keys.c.kid == kid)).first()
        if known is None:
            conn.execute(insert(signing_keys).values(kid=kid, public_jwk=public_jwk,
                                                     created_at=now))  # fmt: skip
        conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(retired_at=None)
        )
        conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid != kid, signing_keys.c.retired_at.is_(None))
            .values(retired_at=now)
        )


def published_keys(engine: Engine) -> list[Any]:
    with reading(engine) as conn:
        return list(conn.execute(select(signing_keys).order_by(signing_keys.c.created_at)))


def approval(engine: Engine, case_id: str) -> Any | None:
    """The case with its approval as certificates state it: the number and the day of the
    decision that gave it (automatic, a second try's or the counter's)."""
    tried = second_tries.alias("tried")
    query = (
        select(
            cases, rulesets.c.version.label("ruleset_version"),
            reviews.c.approval_number.label("review_number"),
            reviews.c.decided_at.label("review_decided_at"),
            reviews.c.entitlements.label("review_entitlements"),
            tried.c.approval_number.label("tried_number"),
            tried.c.decided_at.label("tried_decided_at"),
            tried.c.decision.label("tried_decision"),
        )
        .select_from(
            cases.join(rulesets, rulesets.c.fingerprint == cases.c.ruleset_fingerprint)
            .outerjoin(reviews, reviews.c.case_id == cases.c.id)
            .outerjoin(tried, and_(tried.c.case_id == cases.c.id,
                                   tried.c.approval_number.is_not(None)))
        )
        .where(cases.c.id == case_id)
    )  # fmt: skip
    with reading(engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    number, decided_at = row.approval_number, row.decided_at
    entitlements = row.decision.get("entitlements") or []
    if number is None and row.review_number is not None:
        number, decided_at = row.review_number, row.review_decided_at
        entitlements = row.review_entitlements or []
    if number is None and row.tried_number is not None:
        number, decided_at = row.tried_number, row.tried_decided_at
        entitlements = row.tried_decision.get("entitlements") or []
    return Approval(row, number, decided_at, entitlements)


@dataclass(frozen=True)
class Approval:
    """A case with its approval as the decision that gave it states it."""

    case: Any
    number: str | None
    decided_at: datetime
    entitlements: list[dict[str, Any]]


def case_of_number(engine: Engine, number: str) -> str | None:
    """The case an approval number belongs to, whichever decision gave it."""
    with reading(engine) as conn:
        for table in (cases, reviews, second_tries):
            column = table.c.id if table is cases else table.c.case_id
            found = conn.execute(select(column).where(table.c.approval_number == number)).first()
            if found is not None:
                return str(found[0])
    return None


def issued(engine: Engine, case_id: str) -> Any | None:
    with reading(engine) as conn:
        return conn.execute(select(certificates).where(certificates.c.case_id == case_id)).first()


def store(
    engine: Engine,
    *,
    case: Any,
    approval_number: str,
    kid: str,
    token: str,
    now: datetime,
) -> Any:
    """Store the certificate with its event; the one stored first if two raced."""
    try:
        with writing(engine) as conn:
            conn.execute(insert(certificates).values(
                case_id=case.id, approval_number=approval_number, kid=kid, token=token,
                issued_at=now,
            ))  # fmt: skip
            events.case_event(
                conn, "case.certificate_issued", case_id=case.id,
                recipient_id=case.submitted_by, applicant_name=case.applicant_name,
                status=case.status, at=now, approval_number=approval_number,
            )  # fmt: skip
    except IntegrityError:
        pass
    return issued(engine, case.id)


def revoked_numbers(engine: Engine) -> list[str]:
    """The approval numbers of every revoked case, whichever decision gave them."""
    with reading(engine) as conn:
        rows = conn.execute(select(number_of(cases.c.id)).where(cases.c.status == "revoked"))
        return [n for (n,) in rows if n is not None]


def record_check(engine: Engine, status: str, approval_number: str | None, now: datetime) -> None:
    """An online verification, for the reports (policy §12)."""
    with writing(engine) as conn:
        case_id = conn.execute(
            select(certificates.c.case_id).where(certificates.c.approval_number == approval_number)
        ).scalar() if approval_number else None  # fmt: skip
        conn.execute(insert(certificate_checks).values(
            checked_at=now, status=status, case_id=case_id
        ))  # fmt: skip

"""Events (policy.md §10): written with their change, published in commit order, read as a
feed, and fanned out to the recipient's webhook endpoints when published.

``record`` runs inside the transaction of the change (a transactional outbox). ``publish``
gives each committed event its place in the feed, one publisher at a time (the positions row
is locked), and queues a delivery to each active endpoint of the recipient that takes the
event's type: an event that commits after another publisher ran is simply placed later, so a
client reading the feed in order never skips one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, insert, select, update

from miaopi.masking import mask_name
from miaopi.records.engines import reading
from miaopi.records.event_tables import (
    event_positions,
    events,
    webhook_deliveries,
    webhook_endpoints,
)
from miaopi.records.paging import new_id
from miaopi.records.prepared import Prepared
from miaopi.records.tables import cases
from miaopi.records.writing import writing

_INSERT = Prepared(insert(events))  # with every decision (see prepared.py)


def record(
    conn: Connection,
    kind: str,
    *,
    recipient_id: int,
    at: datetime,
    data: dict[str, Any],
    case_id: str | None = None,
    batch_id: str | None = None,
) -> None:
    """An event, in the transaction of the change it reports."""
    _INSERT.execute(conn, {
        "id": new_id(), "type": kind, "case_id": case_id, "batch_id": batch_id,
        "recipient_id": recipient_id, "occurred_at": at, "data": data, "position": None,
    })  # fmt: skip


def case_event(
    conn: Connection,
    kind: str,
    *,
    case_id: str,
    recipient_id: int,
    applicant_name: str,
    status: str,
    at: datetime,
    **detail: Any,
) -> None:
    """A case's event: its id, status and the applicant's masked name, and ``detail`` (ids,
    counts, outcomes; never personal data)."""
    data = {"case_id": case_id, "status": status, "name": mask_name(applicant_name), **detail}
    record(conn, kind, recipient_id=recipient_id, at=at, data=data, case_id=case_id)


def to_submitter(conn: Connection, kind: str, case_id: str, **event: Any) -> None:
    """``case_event`` for a case whose row is not in hand: its submitter and name read here."""
    case = conn.execute(
        select(cases.c.submitted_by, cases.c.applicant_name).where(cases.c.id == case_id)
    ).one()
    case_event(conn, kind, case_id=case_id, recipient_id=case.submitted_by,
               applicant_name=case.applicant_name, **event)  # fmt: skip


def decided(conn: Connection, status: str, **event: Any) -> None:
    """``case.decided`` for an approval or a rejection, ``case.referred`` for a referral."""
    case_event(conn, "case.referred" if status == "referred" else "case.decided",
               status=status, **event)  # fmt: skip


# Asked every second by every process, and the publisher's own statements: prepared (see
# prepared.py); a pass that places a few events is a handful of round trips.
_UNPUBLISHED = Prepared(select(events.c.seq).where(events.c.position.is_(None)).limit(1))
_LAST = Prepared(
    select(event_positions.c.last).where(event_positions.c.id == 1).with_for_update()
)
# A pass places this many at most: on SQLite it runs on the event loop, and a backlog of
# thousands in one transaction held the loop for tens of milliseconds (bench/HISTORY.md).
CHUNK = 64
_PENDING = Prepared(
    select(events.c.seq, events.c.id, events.c.type, events.c.recipient_id)
    .where(events.c.position.is_(None))
    .order_by(events.c.seq)
    .limit(CHUNK)
)
_ENDPOINTS_OF = Prepared(
    select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
        webhook_endpoints.c.client_id == bindparam("recipient"),
        webhook_endpoints.c.active.is_(True),
    )
)
_PLACE = Prepared(
    update(events).where(events.c.seq == bindparam("event_seq")).values(position=bindparam("place"))
)
_SET_LAST = Prepared(
    update(event_positions).where(event_positions.c.id == 1).values(last=bindparam("last"))
)
_QUEUE = Prepared(insert(webhook_deliveries))


def publish(engine: Engine, now: datetime) -> int:
    """Place committed events in the feed and queue their deliveries; how many were placed."""
    with reading(engine) as conn:  # most passes find none: no write transaction for them
        if _UNPUBLISHED.first(conn, {}) is None:
            return 0
    with writing(engine) as conn:
        last = _LAST.scalar(conn, {})
        pending = _PENDING.rows(conn, {})
        endpoints = {r: _ENDPOINTS_OF.rows(conn, {"recipient": r})
                     for r in {e.recipient_id for e in pending}}  # fmt: skip
        for event in pending:
            last += 1
            _PLACE.execute(conn, {"event_seq": event.seq, "place": last})
            for endpoint in endpoints[event.recipient_id]:
                if endpoint.event_types is None or event.type in endpoint.event_types:
                    queue_delivery(conn, event.id, endpoint.id, now)
        _SET_LAST.execute(conn, {"last": last})
        return len(pending)


def queue_delivery(conn: Connection, event_id: str, endpoint_id: str, now: datetime) -> None:
    _QUEUE.execute(conn, {
        "id": new_id(), "event_id": event_id, "endpoint_id": endpoint_id, "status": "pending",
        "attempts": 0, "next_attempt_at": now, "lease_until": None, "created_at": now,
    })  # fmt: skip


def feed(
    engine: Engine, recipient_id: int | None, after: int, limit: int
) -> list[Row[Any]]:
    """Published events after ``after``, in feed order: the recipient's (None: everyone's)."""
    query = select(events).where(events.c.position > after)
    if recipient_id is not None:
        query = query.where(events.c.recipient_id == recipient_id)
    with reading(engine) as conn:
        return list(conn.execute(query.order_by(events.c.position).limit(limit)))


def get(engine: Engine, event_id: str) -> Row[Any] | None:
    with reading(engine) as conn:
        return conn.execute(select(events).where(events.c.id == event_id)).first()

"""Webhook endpoints and their deliveries (policy.md §10): taken once, attempted, listed.

A worker takes due deliveries with a lease: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so
instances taking at once take different rows; on SQLite the single writer takes them in turn.
Each attempt is recorded with what came of it, and the delivery is then done, failed for good,
or due again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, insert, or_, select, update

from miaopi.records.engines import reading
from miaopi.records.event_tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from miaopi.records.events import queue_delivery
from miaopi.records.paging import new_id, newest_first
from miaopi.records.prepared import Prepared
from miaopi.records.writing import writing


def create_endpoint(
    engine: Engine,
    *,
    client_id: int,
    url: str,
    event_types: list[str] | None,
    secret: str,
    now: datetime,
) -> str:
    endpoint_id = new_id()
    with writing(engine) as conn:
        conn.execute(
            insert(webhook_endpoints).values(
                id=endpoint_id, client_id=client_id, url=url, event_types=event_types,
                secret=secret, active=True, created_at=now,
            )
        )  # fmt: skip
    return endpoint_id


_LISTED = (
    webhook_endpoints.c.id, webhook_endpoints.c.client_id, webhook_endpoints.c.url,
    webhook_endpoints.c.event_types, webhook_endpoints.c.active,
    webhook_endpoints.c.disabled_reason, webhook_endpoints.c.created_at,
)  # fmt: skip


def endpoints_of(engine: Engine, client_id: int) -> list[Row[Any]]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(*_LISTED)
                .where(webhook_endpoints.c.client_id == client_id,
                       webhook_endpoints.c.deleted_at.is_(None))
                .order_by(webhook_endpoints.c.seq)
            )
        )  # fmt: skip


def endpoint(engine: Engine, endpoint_id: str) -> Any | None:
    with reading(engine) as conn:
        return conn.execute(
            select(*_LISTED).where(
                webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.deleted_at.is_(None)
            )
        ).first()


def delete_endpoint(engine: Engine, endpoint_id: str, now: datetime) -> None:
    """Removed: nothing more is sent to it, its pending deliveries are dropped."""
    with writing(engine) as conn:
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(active=False, deleted_at=now)
        )
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.endpoint_id == endpoint_id,
                   webhook_deliveries.c.status == "pending")
            .values(status="cancelled", next_attempt_at=None, lease_until=None)
        )  # fmt: skip


def attempts(
    engine: Engine, endpoint_id: str, limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """Every attempt to the endpoint, newest first, with its event and its delivery's state."""
    query = (
        select(
            webhook_attempts.c.seq, webhook_attempts.c.attempted_at,
            webhook_attempts.c.status_code, webhook_attempts.c.error,
            webhook_attempts.c.duration_ms, webhook_deliveries.c.id.label("delivery_id"),
            webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at,
            events.c.id.label("event_id"), events.c.type,
        )
        .select_from(
            webhook_attempts.join(
                webhook_deliveries, webhook_deliveries.c.id == webhook_attempts.c.delivery_id
            ).join(events, events.c.id == webhook_deliveries.c.event_id)
        )
        .where(webhook_deliveries.c.endpoint_id == endpoint_id)
    )  # fmt: skip
    return newest_first(engine, query, webhook_attempts.c.seq, limit, cursor)


@dataclass(frozen=True, slots=True)
class Due:
    delivery_id: str
    attempts: int
    created_at: datetime
    url: str
    secret: str
    event: Row[Any]


# Asked every second by every process: prepared (see prepared.py).
_ANY_DUE = Prepared(
    select(webhook_deliveries.c.id)
    .where(
        webhook_deliveries.c.status == "pending",
        webhook_deliveries.c.next_attempt_at <= bindparam("now"),
        or_(webhook_deliveries.c.lease_until.is_(None),
            webhook_deliveries.c.lease_until < bindparam("now")),
    )
    .limit(1)
)  # fmt: skip


def take_due(engine: Engine, now: datetime, lease: timedelta, limit: int) -> list[Due]:
    """Take up to ``limit`` due deliveries for ``lease`` (see the module)."""
    free = and_(
        webhook_deliveries.c.status == "pending",
        webhook_deliveries.c.next_attempt_at <= now,
        or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
    )
    query = (
        select(webhook_deliveries.c.id)
        .where(free)
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(limit)
    )
    with reading(engine) as conn:  # most passes find none: no write transaction for them
        if _ANY_DUE.first(conn, {"now": now}) is None:
            return []
    with writing(engine) as conn:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = [r.id for r in conn.execute(query)]
        if not ids:
            return []
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_(ids), free)
            .values(lease_until=now + lease)
        )
        rows = conn.execute(
            select(
                webhook_deliveries.c.id.label("delivery_id"), webhook_deliveries.c.attempts,
                webhook_deliveries.c.created_at, webhook_endpoints.c.url,
                webhook_endpoints.c.secret, events,
            )
            .select_from(
                webhook_deliveries.join(
                    webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id
                ).join(events, events.c.id == webhook_deliveries.c.event_id)
            )
            .where(webhook_deliveries.c.id.in_(ids))
        )  # fmt: skip
        return [Due(r.delivery_id, r.attempts, r.created_at, r.url, r.secret, r) for r in rows]


@dataclass(frozen=True, slots=True)
class Attempted:
    delivery_id: str
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    succeeded: bool
    next_attempt_at: datetime | None  # None with no success: failed for good
    why_failed: str | None = None  # then: why the endpoint is disabled


# Recorded by the batch: prepared (see prepared.py), so that a batch of attempts that ended
# together is one short transaction rather than a run of them holding the event loop.
_ATTEMPT = Prepared(insert(webhook_attempts))
_AFTER_ATTEMPT = Prepared(
    update(webhook_deliveries)
    .where(webhook_deliveries.c.id == bindparam("delivery"))
    .values(
        status=bindparam("status"),
        attempts=webhook_deliveries.c.attempts + 1,
        next_attempt_at=bindparam("next_at"),
        lease_until=None,
    )
)


def record_attempts(engine: Engine, attempted: list[Attempted]) -> None:
    """Record attempts and what follows of each, in one transaction."""
    with writing(engine) as conn:
        for a in attempted:
            _record(conn, a)


def _record(conn: Any, a: Attempted) -> None:
    status = "succeeded" if a.succeeded else ("pending" if a.next_attempt_at else "failed")
    _ATTEMPT.execute(conn, {
        "delivery_id": a.delivery_id, "attempted_at": a.at, "status_code": a.status_code,
        "error": a.error, "duration_ms": a.duration_ms,
    })  # fmt: skip
    _AFTER_ATTEMPT.execute(conn, {
        "delivery": a.delivery_id, "status": status,
        "next_at": a.next_attempt_at if status == "pending" else None,
    })  # fmt: skip
    if status == "failed":
        # An endpoint that kept failing for a day is disabled; its owner sees why.
        endpoint_id = select(webhook_deliveries.c.endpoint_id).where(
            webhook_deliveries.c.id == a.delivery_id
        ).scalar_subquery()
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(active=False, disabled_reason=a.why_failed)
        )


def release(engine: Engine, delivery_ids: list[str]) -> None:
    """Give taken deliveries back (a worker stopping): due again at once, for any worker."""
    if not delivery_ids:
        return
    with writing(engine) as conn:
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_(delivery_ids),
                   webhook_deliveries.c.status == "pending")
            .values(lease_until=None)
        )  # fmt: skip


def redeliver(engine: Engine, event_id: str, now: datetime) -> int:
    """A new delivery of the event to each of its recipient's active endpoints that takes its
    type; how many."""
    with writing(engine) as conn:
        event = conn.execute(select(events).where(events.c.id == event_id)).one()
        targets = conn.execute(
            select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
                webhook_endpoints.c.client_id == event.recipient_id,
                webhook_endpoints.c.active.is_(True),
            )
        )
        count = 0
        for target in targets:
            if target.event_types is None or event.type in target.event_types:
                queue_delivery(conn, event_id, target.id, now)
                count += 1
        return count

"""Application batches' records: stored whole, decided item by item, completed once.

A batch and all its items are stored in one transaction; a resent batch with the same
Idempotency-Key finds it. Items are taken with a lease, as webhook deliveries are, and each
item's result is recorded with the batch's completion and its ``batch.completed`` event when
it is the last: the batch is done exactly when its last item is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from miaopi.records import events
from miaopi.records.batch_tables import batch_items, batches
from miaopi.records.engines import reading
from miaopi.records.paging import new_id
from miaopi.records.prepared import Prepared
from miaopi.records.writing import writing


@dataclass(frozen=True, slots=True)
class Item:
    row: int
    item_key: str
    body: dict[str, Any] | None  # None: invalid as given
    errors: list[dict[str, Any]] | None = None


class BatchKeyRace(Exception):
    """A concurrent request with the same Idempotency-Key stored its batch first."""


def find_idempotent(engine: Engine, client_id: int, key: str) -> Any | None:
    with reading(engine) as conn:
        return conn.execute(
            select(batches.c.id, batches.c.request_hash).where(
                batches.c.client_id == client_id, batches.c.idempotency_key == key
            )
        ).first()


def create(
    engine: Engine,
    *,
    client_id: int,
    items: list[Item],
    idempotency: tuple[str, str] | None,
    now: datetime,
) -> str:
    """Store the batch and its items; its id. Invalid items are done at once."""
    batch_id = new_id()
    pending = any(i.body is not None for i in items)
    try:
        with writing(engine) as conn:
            conn.execute(
                insert(batches).values(
                    id=batch_id, client_id=client_id,
                    idempotency_key=idempotency[0] if idempotency else None,
                    request_hash=idempotency[1] if idempotency else None,
                    status="queued" if pending else "done", total=len(items), created_at=now,
                    completed_at=None if pending else now,
                )
            )  # fmt: skip
            if items:
                conn.execute(insert(batch_items), [
                    {"batch_id": batch_id, "row": i.row, "item_key": i.item_key,
                     "body": i.body, "status": "pending" if i.body is not None else "done",
                     "outcome": None if i.body is not None else "invalid", "errors": i.errors,
                     "case_id": None, "lease_until": None, "decided_at": None}
                    for i in items
                ])  # fmt: skip
            if not pending:
                _completed(conn, batch_id, client_id, now)
    except IntegrityError as exc:
        if idempotency is not None and find_idempotent(engine, client_id, idempotency[0]):
            raise BatchKeyRace from exc
        raise
    return batch_id


def get(engine: Engine, batch_id: str) -> Row[Any] | None:
    with reading(engine) as conn:
        return conn.execute(select(batches).where(batches.c.id == batch_id)).first()


def counts(engine: Engine, batch_id: str) -> dict[str, int]:
    with reading(engine) as conn:
        return _tally(conn, batch_id)


def _tally(conn: Any, batch_id: str) -> dict[str, int]:
    """The batch's items decided so far, by outcome."""
    rows = conn.execute(
        select(batch_items.c.outcome, func.count())
        .where(batch_items.c.batch_id == batch_id, batch_items.c.status == "done")
        .group_by(batch_items.c.outcome)
    )
    found = {outcome: n for outcome, n in rows}
    return {k: found.get(k, 0) for k in ("approved", "rejected", "referred", "invalid")}


def results(engine: Engine, batch_id: str) -> list[Row[Any]]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(
                    batch_items.c.row, batch_items.c.item_key, batch_items.c.status,
                    batch_items.c.outcome, batch_items.c.case_id, batch_items.c.errors,
                )
                .where(batch_items.c.batch_id == batch_id)
                .order_by(batch_items.c.row)
            )
        )  # fmt: skip


# Asked every second by every process: prepared (see prepared.py).
_ANY_PENDING = Prepared(
    select(batch_items.c.seq)
    .where(
        batch_items.c.status == "pending",
        or_(batch_items.c.lease_until.is_(None), batch_items.c.lease_until < bindparam("now")),
    )
    .limit(1)
)


def take(engine: Engine, now: datetime, lease: timedelta, limit: int) -> list[Row[Any]]:
    """Take pending items, oldest batch first, for ``lease`` (one worker each)."""
    free = and_(
        batch_items.c.status == "pending",
        or_(batch_items.c.lease_until.is_(None), batch_items.c.lease_until < now),
    )
    query = select(batch_items.c.seq).where(free).order_by(batch_items.c.seq).limit(limit)
    with reading(engine) as conn:  # most passes find none: no write transaction for them
        if _ANY_PENDING.first(conn, {"now": now}) is None:
            return []
    with writing(engine) as conn:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        seqs = [r.seq for r in conn.execute(query)]
        conn.execute(
            update(batch_items)
            .where(batch_items.c.seq.in_(seqs), free)
            .values(lease_until=now + lease)
        )
        conn.execute(
            update(batches)
            .where(batches.c.id.in_(
                select(batch_items.c.batch_id).where(batch_items.c.seq.in_(seqs))
            ), batches.c.status == "queued")
            .values(status="running")
        )  # fmt: skip
        return list(
            conn.execute(
                select(batch_items, batches.c.client_id)
                .join(batches, batches.c.id == batch_items.c.batch_id)
                .where(batch_items.c.seq.in_(seqs))
                .order_by(batch_items.c.seq)
            )
        )


def finish(
    engine: Engine,
    item_seq: int,
    *,
    outcome: str,
    case_id: str | None,
    errors: list[dict[str, Any]] | None,
    now: datetime,
) -> bool:
    """Record an item's result; with the last, the batch is done: whether it was the last."""
    with writing(engine) as conn:
        item = conn.execute(
            select(batch_items.c.batch_id, batches.c.client_id)
            .join(batches, batches.c.id == batch_items.c.batch_id)
            .where(batch_items.c.seq == item_seq, batch_items.c.status == "pending")
        ).first()
        if item is None:
            return False  # recorded already (another worker whose lease ran out)
        # The batch's row is locked first: of two items finishing at once, the second then
        # counts after the first committed, so the last one always sees it is the last.
        conn.execute(
            select(batches.c.id).where(batches.c.id == item.batch_id).with_for_update()
        )
        conn.execute(
            update(batch_items)
            .where(batch_items.c.seq == item_seq)
            .values(status="done", outcome=outcome, case_id=case_id, errors=errors,
                    lease_until=None, decided_at=now)
        )  # fmt: skip
        left = conn.execute(
            select(func.count()).where(
                batch_items.c.batch_id == item.batch_id, batch_items.c.status == "pending"
            )
        ).scalar_one()
        if left:
            return False
        conn.execute(
            update(batches)
            .where(batches.c.id == item.batch_id)
            .values(status="done", completed_at=now)
        )
        _completed(conn, item.batch_id, item.client_id, now)
        return True


def _completed(conn: Any, batch_id: str, client_id: int, now: datetime) -> None:
    events.record(conn, "batch.completed", recipient_id=client_id, at=now,
                  data={"batch_id": batch_id, "counts": _tally(conn, batch_id)},
                  batch_id=batch_id)  # fmt: skip

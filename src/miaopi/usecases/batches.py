"""Batches (graduate season): many applications in one request, decided in the background.

Each valid item is decided as if its submitter had sent it alone, with an Idempotency-Key of
its own (the batch and the item's row): an item taken again after a worker stopped finds the
case it recorded and is never decided twice. A worker in each serving process takes a few
items at a time, so a batch of a thousand moves at the service's normal speed without
crowding out applications sent one by one. An item the rules cannot take (a bad check digit,
another employer's USCC) is an ``invalid`` result naming its field, never a failed batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from miaopi.decision.service import Decider
from miaopi.domain import Application
from miaopi.eligibility.calendar import WorkingCalendar
from miaopi.records import batches, clients
from miaopi.records.batches import BatchKeyRace, Item
from miaopi.records.clients import Client
from miaopi.records.database import Database
from miaopi.usecases.errors import (
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    UseCaseError,
)
from miaopi.usecases.submit import Submission, submit
from miaopi.usecases.unit_of_work import UnitOfWork

log = logging.getLogger("miaopi.batches")
LEASE = timedelta(minutes=5)
MAX_ITEMS = 1000


async def create(
    database: Database,
    uow: UnitOfWork,
    client: Client,
    items: list[Item],
    *,
    canonical_body: bytes,
    idempotency_key: str | None,
    now: datetime,
) -> str:
    """Store the batch (or find the one the same key and body stored); its id."""
    body_hash = uow.body_hash(canonical_body)
    if idempotency_key is not None:
        seen = await database.run(batches.find_idempotent, client.id, idempotency_key)
        if seen is not None:
            return _same(seen, body_hash)
    idempotency = (idempotency_key, body_hash) if idempotency_key is not None else None
    try:
        return await database.run_in_thread(
            lambda engine: batches.create(
                engine, client_id=client.id, items=items, idempotency=idempotency, now=now
            )
        )
    except BatchKeyRace:
        seen = await database.run(batches.find_idempotent, client.id, str(idempotency_key))
        return _same(seen, body_hash)


def _same(seen: Any, body_hash: str) -> str:
    if seen.request_hash != body_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different batch")
    return str(seen.id)


async def owned(database: Database, client: Client, batch_id: str) -> Any:
    found = await database.run(batches.get, batch_id)
    if found is None or (client.role != "admin" and found.client_id != client.id):
        raise NotFound("batch not found")
    return found


def stored_item(row: int, item_key: str, application: Application, canonical: bytes) -> Item:
    """A valid item as stored: the application, and its canonical body for its key's hash."""
    body = {"application": application.to_json(), "canonical": canonical.decode()}
    return Item(row, item_key, body)


@dataclass
class BatchRunner:
    database: Database
    uow: UnitOfWork
    decider: Decider
    city_prefix: str
    calendar: Callable[[], WorkingCalendar]
    clock: Callable[[], datetime]
    at_once: int = 8  # items a process decides at once: room is left for single requests

    async def run_once(self) -> int:
        """Decide a few pending items; how many were decided."""
        items = await self.database.run(
            batches.take, self.clock(), LEASE, self.at_once
        )
        done = await asyncio.gather(*(self._decide(item) for item in items))
        return sum(done)

    async def _decide(self, item: Any) -> bool:
        try:
            submitter = await self.database.run(clients.by_id, item.client_id)
            if submitter is None or not submitter.active:
                raise Forbidden("the batch's submitter is no longer an active client")
            submission = Submission(
                application=Application.from_json(item.body["application"]),
                client=submitter,
                canonical_body=item.body["canonical"].encode(),
                idempotency_key=f"batch:{item.batch_id}:{item.row}",
            )
            done = await submit(
                submission, decider=self.decider, uow=self.uow, city_prefix=self.city_prefix,
                calendar=self.calendar(),
            )  # fmt: skip
            outcome, case_id, errors = done.case.outcome, done.case.id, None
        except UseCaseError as exc:
            outcome, case_id, errors = "invalid", None, [_error(exc)]
        except Exception:
            log.exception("a batch item failed; it is taken again after its lease")
            return False
        await self.database.run(
            lambda engine: batches.finish(
                engine, item.seq, outcome=outcome, case_id=case_id, errors=errors,
                now=self.clock(),
            )
        )  # fmt: skip
        return True

    async def run_every(self, interval_s: float) -> None:
        while True:
            try:
                decided = await self.run_once()
            except Exception:
                log.exception("a batch pass failed; the next pass tries again")
                decided = 0
            if decided < self.at_once:
                await asyncio.sleep(interval_s)


def _error(exc: UseCaseError) -> dict[str, Any]:
    if isinstance(exc, InvalidInput):
        loc = [part for part in exc.loc if part != "body"]
        return {"loc": loc, "msg": str(exc)}
    if isinstance(exc, Forbidden):
        return {"loc": ["employer", "uscc"], "msg": str(exc)}
    return {"loc": [], "msg": str(exc)}

"""Webhook delivery (policy.md §10): at least once, signed as Standard Webhooks says, retried
with growing delays for more than a day, never on a decision's request path.

Each pass publishes the events committed since the last one (placing them in the feed and
queueing their deliveries), takes the deliveries that are due (``webhooks.take_due``: each by
one worker of however many run), and sends them at once, each cut at the timeout. A receiver's
answer in 2xx delivers; anything else — another status, a redirect (never followed), a
timeout, a refused address — is an attempt that failed, tried again after the next delay of
the schedule with jitter. After the last, the delivery has failed and its endpoint is disabled,
with the reason for its owner. A worker that stops gives back what it has not sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from miaopi import __version__
from miaopi.notify.address_guard import Refused
from miaopi.records import events, webhooks
from miaopi.records.database import Database

log = logging.getLogger("miaopi.webhooks")

# After each failed attempt, the wait before the next (Svix's schedule): 8 attempts over 27.6
# hours, so a receiver down for a day still gets every event.
RETRY_AFTER = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)  # fmt: skip
LEASE = timedelta(minutes=2)  # far longer than a send (its timeout)


def event_body(event: Any) -> bytes:
    """The event as the feed gives it: the body of every attempt, byte for byte."""
    return json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":")).encode()


def event_json(event: Any) -> dict[str, Any]:
    body = {
        "event_id": event.id,
        "type": event.type,
        "case_id": event.case_id,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "data": event.data,
    }
    if event.batch_id is not None:
        body["batch_id"] = event.batch_id
    return body


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deliverer:
    database: Database
    client: httpx.AsyncClient  # over notify.transport.GuardedTransport, no redirects
    clock: Callable[[], datetime]  # the service's: when deliveries are due
    # The real time, for webhook-timestamp: a receiver checks it against its own clock.
    wall: Callable[[], datetime] = _wall
    batch: int = 50
    rng: random.Random = field(default_factory=random.Random)

    async def publish(self) -> int:
        """Place every committed event in the feed, a chunk a transaction; how many."""
        placed = 0
        while True:
            chunk = await self.database.run(events.publish, self.clock())
            placed += chunk
            if chunk < events.CHUNK:
                return placed
            await asyncio.sleep(0)  # decisions go on between chunks

    async def run_once(self) -> int:
        """Publish, then attempt the due deliveries; how many were attempted."""
        await self.publish()
        return await self._send_due()

    async def _send_due(self) -> int:
        now = self.clock()
        due = await self.database.run(webhooks.take_due, now, LEASE, self.batch)
        if not due:
            return 0
        try:
            attempted = await asyncio.gather(*(self._attempt(d) for d in due))
        except BaseException:
            # Stopped while sending: nothing was recorded; all of it goes back, due at once.
            ids = sorted(d.delivery_id for d in due)
            await asyncio.shield(self.database.run(webhooks.release, ids))
            raise
        # One transaction for the batch: attempts that end together (a receiver's timeout)
        # must not become a run of transactions holding the event loop.
        await self.database.run(webhooks.record_attempts, list(attempted))
        return len(due)

    async def _attempt(self, due: webhooks.Due) -> webhooks.Attempted:
        body = event_body(due.event)
        sent_at = self.wall()
        headers = {
            "content-type": "application/json",
            "user-agent": f"miaopi-webhooks/{__version__}",
            "webhook-id": due.event.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(due.secret).sign(due.event.id, sent_at, body),
        }
        started = time.perf_counter()
        status_code, error = None, None
        try:
            async with self.client.stream("POST", due.url, content=body, headers=headers) as r:
                status_code = r.status_code  # the body is not read: nothing of it is needed
        except Refused as exc:
            error = str(exc)
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = (time.perf_counter() - started) * 1000
        succeeded = status_code is not None and 200 <= status_code < 300
        if status_code is not None and not succeeded:
            error = f"HTTP {status_code}"
        now = self.clock()
        attempt = due.attempts + 1
        next_at = None
        if not succeeded and attempt <= len(RETRY_AFTER):
            wait = RETRY_AFTER[attempt - 1].total_seconds() * self.rng.uniform(0.8, 1.2)
            next_at = now + timedelta(seconds=wait)
        why = None
        if not succeeded and next_at is None:
            why = f"{attempt} attempts over {now - due.created_at} failed; the last: {error}"
        if not succeeded:
            log.info("webhook attempt %d failed: %s", attempt, error)
        return webhooks.Attempted(
            due.delivery_id, now, status_code, (error or "")[:200] or None, duration_ms,
            succeeded, next_at, why,
        )  # fmt: skip

    async def run_every(self, interval_s: float) -> None:
        """The background worker of a serving process (and of `miaopi events deliver`):
        publishing and sending apart, so that receivers that take their time do not hold
        events back from the feed (or pile them into one long pass)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._every(self.publish, interval_s, 0))
            tasks.create_task(self._every(self._send_due, interval_s, self.batch))

    @staticmethod
    async def _every(work: Callable[[], Awaitable[int]], interval_s: float, full: int) -> None:
        while True:
            try:
                done = await work()
            except Exception:
                log.exception("a webhook pass failed; the next pass tries again")
                done = 0
            if not full or done < full:  # a full batch of sends: straight on to the next
                await asyncio.sleep(interval_s)

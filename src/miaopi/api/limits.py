"""Limits: a cap on request bodies, a request rate per API client, and decisions at once.

The rate limiter is a token bucket per client in each process: with N instances a client gets
up to N times the rate overall, so size it per instance (or in front, at the load balancer).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miaopi.api.errors import Problem, problem_response
from miaopi.telemetry.metrics import DECISIONS_IN_FLIGHT, DECISIONS_TURNED_AWAY


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while they stream in.

    A POST to a path of ``larger`` may be up to its own cap: a document upload (the document
    and its multipart envelope; the route checks the document's own size), a batch.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app, self.max_bytes, self.larger = app, max_bytes, tuple(larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.max_bytes
        if scope["method"] == "POST":
            for path, larger in self.larger:
                if path.fullmatch(scope["path"]):
                    cap = larger
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > cap:
                await self._too_large(scope, receive, send, cap)
                return
        seen, answered = 0, False

        async def counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                seen += len(message.get("body", b""))
                if seen > cap:
                    # Answer now, and tell the app the client went away: whatever it answers
                    # to that is dropped below.
                    answered = True
                    await self._too_large(scope, receive, send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, counted, guarded)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        # Built when needed: every request paid for a JSON answer almost none of them send.
        too_large = problem_response(413, f"the request body is over {cap} bytes", "body-too-large")
        await too_large(scope, receive, send)


class RateLimiter:
    """``per_minute`` requests a minute per client, in bursts of up to ``burst``.

    Public endpoints key it by address: past ``size`` clients, the ones whose bucket has
    filled again are forgotten, so a flood of addresses costs no lasting memory."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic,
        size: int = 100_000,
    ) -> None:  # fmt: skip
        self.rate, self.burst, self._clock, self.size = per_minute / 60.0, burst, clock, size
        self._buckets: dict[Any, tuple[float, float]] = {}  # client → (tokens, at)

    def _tokens(self, client: Any, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def _refuse(self, tokens: float) -> Problem:
        wait = math.ceil((1 - tokens) / self.rate)
        return Problem(
            429,
            f"too many requests from this client; retry in {wait} s",
            slug="rate-limited",
            headers={"Retry-After": str(wait)},
        )

    def check(self, client: Any) -> None:
        """The 429 ``take`` would raise, without spending: for limits on failures only, which
        must refuse before the attempt is judged, or the refusal would tell its result."""
        if self.rate > 0 and (tokens := self._tokens(client, self._clock())) < 1:
            raise self._refuse(tokens)

    def take(self, client: Any) -> None:
        """Spend one token of the client's, or raise a 429 problem saying when to come back."""
        if self.rate <= 0:
            return
        now = self._clock()
        tokens = self._tokens(client, now)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            raise self._refuse(tokens)
        if len(self._buckets) >= self.size and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1, now)

    def _forget_full(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.burst]
        for client in full or list(self._buckets):
            del self._buckets[client]


class DecisionLimit:
    """At most ``limit`` decisions at once in this process (0: no limit); the next is a 503.

    A decision spends most of its time waiting on registries, and its CPU on the event loop.
    Past what the loop can serve, every decision in flight waits longer for its turn, and that
    wait counts against its registry budgets: answers that came back in 120 ms are read after
    the deadline, the lookups are unavailable, and the applicants are referred or rejected for
    a fault that is the service's own (bench/HISTORY.md has the runs). Turned away with
    ``Retry-After``, the client sends it again when there is room; nothing was recorded.

    A middleware, before the body's JSON is parsed or the API key looked up: turning a
    request away must cost as little as it can, or the requests turned away take the CPU
    the decisions need: hence a middleware, before the body is parsed or the key looked up,
    not a route dependency.
    """

    ROUTES = frozenset({("POST", "/v1/applications"), ("POST", "/v1/evaluations")})

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.busy = app, limit, 0
        self._overloaded = problem_response(
            503,
            f"this server is making as many decisions as it can at once ({limit}); retry in 1 s",
            "overloaded",
            headers={"Retry-After": "1"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limit or (scope.get("method"), scope.get("path")) not in self.ROUTES:
            await self.app(scope, receive, send)
            return
        # The body first, as it arrives (BodyLimit, outside, bounds it): a client that sends
        # it slowly holds a connection, not one of the places, which a few such clients could
        # otherwise take from everyone.
        arrived: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # gone before it finished, or cut off at BodyLimit's cap
            arrived.append(message)
            if not message.get("more_body", False):
                break
        if self.busy >= self.limit:
            DECISIONS_TURNED_AWAY.inc()
            await self._overloaded(scope, receive, send)
            return

        async def replayed() -> Message:
            return arrived.pop(0) if arrived else await receive()

        self.busy += 1
        DECISIONS_IN_FLIGHT.inc()
        try:
            await self.app(scope, replayed, send)
        finally:
            self.busy -= 1
            DECISIONS_IN_FLIGHT.dec()

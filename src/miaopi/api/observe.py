"""Per request: an id (taken from ``X-Request-ID`` or made), one JSON log line, metrics.

A pure ASGI middleware, so it sees every response, errors included, and sets the request id
for everything the request does: its log lines and the registry queries it makes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miaopi.telemetry.logs import REQUEST_ID
from miaopi.telemetry.metrics import HTTP_REQUESTS, HTTP_SECONDS, series

log = logging.getLogger("miaopi.http")
REQUEST_ID_KEY = "miaopi.request_id"  # in the ASGI scope
# A caller's id is kept only when it cannot smuggle anything into a log line or a header.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# HTTP/1.1 takes any token as a method; as a metric label each one a client invents would be
# a time series of its own, kept for good, so the rest are counted together.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        # For the answer to an unhandled error, which Starlette makes outside this middleware.
        scope[REQUEST_ID_KEY] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            series(HTTP_REQUESTS, method, route, str(status)).inc()
            series(HTTP_SECONDS, method, route).observe(elapsed)
            if route not in ("/metrics", "/healthz", "/readyz"):
                log.info(
                    "%s %s %d", scope["method"], route, status,
                    extra={"method": scope["method"], "route": route, "status": status,
                           "duration_ms": round(elapsed * 1000, 2)},
                )  # fmt: skip
            REQUEST_ID.reset(token)


def _route(scope: MutableMapping[str, Any]) -> str:
    """The route's template (``/v1/applications/{case_id}``), never the path with its ids."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"

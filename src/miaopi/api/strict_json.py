"""JSON request bodies read strictly: UTF-8 only, and no key given twice.

A body in another charset was decoded as if it were UTF-8 (or, in UTF-16 or UTF-32, detected
and accepted), and a key given twice silently kept its last value: ``{"consent":
{"data_query": false}, "consent": {"data_query": true}}`` read as consent. Each is refused with
a problem naming what is wrong, before the body is validated.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from miaopi.api.errors import Problem


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def _is_json(content_type: str) -> tuple[bool, str | None]:
    """Whether the media type is JSON, and the charset it declares, if any."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    is_json = message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
    charset = message.get_param("charset")
    return is_json, charset if isinstance(charset, str) else None


def strict_json(body: bytes) -> Any:
    """The body's JSON; ``Problem`` 422 for bytes that are not UTF-8 or a key given twice."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(["body"], "the body must be JSON in UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKey as exc:
        raise _invalid(["body", exc.key], "this key is given more than once") from None
    except json.JSONDecodeError:
        raise _invalid(["body"], "request body is not valid JSON") from None


def _invalid(loc: list[str], msg: str) -> Problem:
    return Problem(
        422,
        f"invalid input at: {'.'.join(loc)} ({msg})",
        slug="invalid-request",
        errors=[{"loc": loc, "msg": msg}],
    )


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is read by ``strict_json`` before FastAPI validates it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            content_type = request.headers.get("content-type")
            if request.method in ("POST", "PUT", "PATCH"):
                # No Content-Type: FastAPI reads the body as JSON, and so does this.
                is_json, charset = _is_json(content_type) if content_type else (True, None)
                if is_json and charset is not None and charset.lower() not in ("utf-8", "utf8"):
                    raise Problem(
                        415,
                        "JSON is read in UTF-8 only (RFC 8259)",
                        slug="unsupported-media-type",
                        errors=[
                            {"loc": ["header", "content-type"], "msg": "charset must be utf-8"}
                        ],
                    )
                body = await request.body()
                if is_json and body:
                    # Starlette keeps the parsed body: FastAPI's own read gets this one.
                    request._json = strict_json(body)
            return await handler(request)

        return strict

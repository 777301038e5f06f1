"""Every error is an RFC 9457 problem: ``application/problem+json`` with the fields at fault."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from miaopi.api.observe import REQUEST_ID_KEY
from miaopi.telemetry.logs import REQUEST_ID
from miaopi.usecases.errors import (
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    UnsupportedDocument,
    UseCaseError,
)

log = logging.getLogger("miaopi.api")

PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.detail, self.slug = status, detail, slug
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        super().__init__(detail)


# The same titles for a client that asks for Chinese (Accept-Language: zh-…).
_TITLES_ZH = {
    400: "请求有误",
    401: "未认证",
    403: "无权操作",
    404: "未找到",
    405: "不支持该方法",
    406: "无法提供所请求的格式",
    409: "状态冲突",
    413: "请求内容过大",
    415: "不支持的媒体类型",
    422: "请求内容无效",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


def first_language(accept_language: str | None) -> str:
    """The language the client puts first in Accept-Language, lowercased ('' for none)."""
    return (accept_language or "").split(",")[0].split(";")[0].strip().lower()


def wants_chinese(request: Request | None) -> bool:
    """Whether the client puts Chinese first in Accept-Language; machines get English."""
    return request is not None and first_language(
        request.headers.get("accept-language")
    ).startswith("zh")


def invalid(loc: Sequence[str | int], msg: str) -> Problem:
    return Problem(422, msg, slug="invalid-request", errors=[{"loc": list(loc), "msg": msg}])


def problem_response(
    status: int,
    detail: str,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    chinese: bool = False,
) -> JSONResponse:
    title = _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": f"https://miaopi.dev/problems/{slug or title.lower().replace(' ', '-')}",
        "title": _TITLES_ZH.get(status, title) if chinese else title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _clean_msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


# SQLite's result codes for a database that is there but cannot be had right now: busy or
# locked past the busy timeout, an I/O error, a full disk, a file that cannot be opened. SQLite
# also reports a statement that names no such table as an OperationalError: that is a fault of
# ours, a 500.
_SQLITE_UNAVAILABLE = {5, 6, 10, 13, 14}


def _unavailable(exc: OperationalError) -> bool:
    """Whether the database failed to serve (a lost connection, none to be had), not the SQL."""
    if isinstance(exc.orig, sqlite3.Error):
        return (getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_UNAVAILABLE
    return True  # psycopg keeps OperationalError for the connection and the server's state


def as_problem(exc: UseCaseError) -> Problem:
    """A use case's refusal as the problem the contract gives for it."""
    if isinstance(exc, InvalidInput):
        return invalid(exc.loc, str(exc))
    if isinstance(exc, IdempotencyKeyReused):
        return Problem(
            422,
            str(exc),
            slug="idempotency-key-reused",
            errors=[{"loc": ["header", "idempotency-key"], "msg": "reused with a different body"}],
        )
    if isinstance(exc, Forbidden):
        return Problem(403, str(exc), slug="forbidden")
    if isinstance(exc, Conflict):
        return Problem(409, str(exc), slug=exc.slug)
    if isinstance(exc, UnsupportedDocument):
        return Problem(
            415, str(exc), slug="unsupported-document",
            errors=[{"loc": ["body", "file"], "msg": "not a PDF, JPEG or PNG file"}],
        )  # fmt: skip
    return Problem(404, str(exc))  # NotFound: never says whether it exists elsewhere


_METHODS = ("get", "put", "post", "delete", "patch")


def _allowed(request: Request, starlettes: str | None) -> str | None:
    """Every method the path takes, as the API's document lists them (RFC 9110: a 405 names
    them all). Starlette's own ``Allow`` names those of the first route that matched, and a
    path served by two routes (GET and POST ``/v1/applications``) lost the other's."""
    path = request.url.path
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^/}]+\}", "[^/]+", template), path):
            methods = {m.upper() for m in operations if m in _METHODS}
            return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
    return starlettes  # a path the document leaves out (/docs)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, exc.slug, exc.errors, exc.headers,
                                wants_chinese(request))  # fmt: skip

    @app.exception_handler(UseCaseError)
    async def _refused(request: Request, exc: UseCaseError) -> JSONResponse:
        p = as_problem(exc)
        return problem_response(p.status, p.detail, p.slug, p.errors, p.headers,
                                wants_chinese(request))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [p for p in err.get("loc", ()) if isinstance(p, str | int)]
            msg = _clean_msg(str(err.get("msg", "invalid")))
            if err.get("type") == "extra_forbidden":
                msg = "unknown field"
            if err.get("type") == "json_invalid":
                msg = "request body is not valid JSON"
            errors.append({"loc": loc, "msg": msg})
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in errors}))
        return problem_response(422, f"invalid input at: {fields}", "invalid-request", errors,
                                chinese=wants_chinese(request))  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body it cannot decode at all (say, not UTF-8): the same
            # problem as any body that is not JSON, so clients handle one status.
            not_json = "request body is not valid JSON"
            return problem_response(
                422, f"invalid input at: body ({not_json})", "invalid-request",
                [{"loc": ["body"], "msg": not_json}],
            )  # fmt: skip
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allowed = _allowed(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), **({"Allow": allowed} if allowed else {})}
        return problem_response(exc.status_code, str(exc.detail), headers=headers,
                                chinese=wants_chinese(request))  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # An error no handler took is answered by Starlette outside the middleware that set
        # the request's id (observe.py): set it again from the scope, for the log line and
        # the answer, so that the id the client reports finds the line.
        outside = REQUEST_ID.get() == "-" and REQUEST_ID_KEY in request.scope
        token = REQUEST_ID.set(request.scope[REQUEST_ID_KEY]) if outside else None
        try:
            # The message may carry personal data from the request: log the type and route only.
            log.error(
                "unhandled %s on %s %s",
                type(exc).__name__,
                request.method,
                request.url.path,
                exc_info=False,
            )
        finally:
            if token is not None:
                REQUEST_ID.reset(token)
        headers = {"X-Request-ID": request.scope[REQUEST_ID_KEY]} if outside else None
        return problem_response(
            500, "an unexpected error occurred; it has been logged", headers=headers
        )

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> JSONResponse:
        if not _unavailable(exc):
            return await _unexpected(request, exc)
        # Nothing was decided for the client to rely on, and asking again is safe: a submission
        # with its Idempotency-Key gets the case if it was recorded after all.
        log.error(
            "database unavailable (%s) on %s %s",
            type(exc.orig).__name__,
            request.method,
            request.url.path,
        )
        return problem_response(
            503,
            "the database is unavailable; try again, a submission with the same Idempotency-Key",
            slug="database-unavailable",
            headers={"Retry-After": "1"},
        )

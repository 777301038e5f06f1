"""Dependencies, as ``Annotated`` aliases the routes declare."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from miaopi.api.errors import Problem, invalid
from miaopi.bootstrap import Container
from miaopi.domain import Role
from miaopi.records.clients import Client, authenticate
from miaopi.records.paging import decode_cursor
from miaopi.records.sealing import key_of

_bearer = HTTPBearer(auto_error=False, description="API key from `miaopi clients create`")


async def _container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(_container)]


class RecentKeys:
    """Keys verified in the last seconds, so a client's burst costs one database lookup.

    Only successes are kept, by the key's SHA-256; a key revoked with ``miaopi clients revoke``
    stops working on every instance within ``ttl_s``.
    """

    def __init__(self, ttl_s: float = 2.0, size: int = 10_000) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._seen: dict[bytes, tuple[float, Client]] = {}

    def get(self, key: str) -> Client | None:
        found = self._seen.get(hashlib.sha256(key.encode()).digest())
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: str, client: Client) -> None:
        if len(self._seen) >= self.size:
            self._seen.clear()  # a flood of distinct keys only costs lookups, never memory
        self._seen[hashlib.sha256(key.encode()).digest()] = (time.monotonic() + self.ttl_s, client)


async def _client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Client:
    unauthorized = Problem(
        401,
        "a valid API key is required: Authorization: Bearer <key>",
        slug="unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized
    state = request.app.state
    cache: RecentKeys = state.recent_keys
    client = cache.get(credentials.credentials)
    if client is None:
        client = await state.container.database.run(authenticate, credentials.credentials)
        if client is None:
            raise unauthorized
        cache.put(credentials.credentials, client)
    state.rate_limiter.take(client.id)
    return client


CurrentClient = Annotated[Client, Depends(_client)]


def allow(*roles: Role) -> Callable[..., Awaitable[Client]]:
    # The client's own checks first, in the same dependency: each level of dependencies costs
    # FastAPI a resolution of its own on every request.
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Client:
        client = await _client(request, credentials)
        if client.role not in roles:
            raise Problem(403, f"the {client.role} role may not do this", slug="forbidden")
        return client

    return check


Submitter = Annotated[Client, Depends(allow("employer", "channel"))]
Evaluator = Annotated[Client, Depends(allow("employer", "channel", "admin"))]
Reader = Annotated[Client, Depends(allow("employer", "channel", "auditor", "admin"))]
Supervisor = Annotated[Client, Depends(allow("auditor", "admin"))]
Auditor = Annotated[Client, Depends(allow("auditor"))]
Officer = Annotated[Client, Depends(allow("officer"))]
Reviewer = Annotated[Client, Depends(allow("officer", "admin"))]
# A counter review's documents: the officer holding it, the case's auditors, the admin.
DocumentReader = Annotated[Client, Depends(allow("officer", "auditor", "admin"))]
Admin = Annotated[Client, Depends(allow("admin"))]
_evaluator = allow("employer", "channel", "admin")


async def _evaluator_or_applicant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Client | None:
    """A submitter's or the admin's key; or no key and an access code: the applicant (None),
    whose code the route checks."""
    if credentials is None and "x-access-code" in request.headers:
        return None
    return await _evaluator(request, credentials)


EvaluatorOrApplicant = Annotated[Client | None, Depends(_evaluator_or_applicant)]


async def _cursor(
    request: Request,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> str | None:
    if cursor is not None:
        try:
            engine = request.app.state.container.database.engine
            decode_cursor(cursor, key_of(engine.dialect))
        except ValueError as exc:
            raise invalid(["query", "cursor"], str(exc)) from exc
    return cursor


Cursor = Annotated[str | None, Depends(_cursor)]


async def reject_unknown_query(request: Request) -> None:
    """Unknown query parameters are refused like unknown body fields: a typo never passes."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = set(_query_names(dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem(
            422,
            f"invalid input at: {', '.join('query.' + n for n in unknown)}",
            slug="invalid-request",
            errors=[{"loc": ["query", name], "msg": "unknown query parameter"} for name in unknown],
        )


def _query_names(dependant: Any) -> Iterator[str]:
    yield from (p.alias for p in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)

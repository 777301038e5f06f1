"""Events and webhooks (policy §10): the feed, the endpoints, their attempts, redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from miaopi.api.deps import ContainerDep, Cursor, Evaluator, Submitter
from miaopi.api.errors import invalid
from miaopi.api.event_schemas import (
    AttemptList,
    EndpointCreatedOut,
    EndpointIn,
    EndpointList,
    EventList,
    RedeliveredOut,
)
from miaopi.api.schemas import ProblemOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.notify.deliverer import event_json
from miaopi.records.paging import decode_cursor, encode_cursor
from miaopi.records.sealing import key_of

router = APIRouter(prefix="/v1", tags=["events and webhooks"], route_class=StrictJsonRoute)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 413, 422, 429)
}


def _endpoint(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "url": row.url, "event_types": row.event_types, "active": row.active,
        "disabled_reason": row.disabled_reason, "created_at": row.created_at.isoformat(),
    }  # fmt: skip


@router.post(
    "/webhook-endpoints",
    response_model=EndpointCreatedOut,
    status_code=201,
    responses=PROBLEMS,
    summary="Register a webhook endpoint; its signing secret is shown this once",
)
async def register(body: EndpointIn, client: Submitter, container: ContainerDep) -> Any:
    hooks = container.webhooks
    endpoint_id, secret = await hooks.register(client, body.url, body.event_types)
    return {**_endpoint(await hooks.owned(client, endpoint_id)), "secret": secret}


@router.get(
    "/webhook-endpoints",
    response_model=EndpointList,
    responses=PROBLEMS,
    summary="The caller's webhook endpoints",
)
async def list_endpoints(client: Submitter, container: ContainerDep) -> Any:
    return {"items": [_endpoint(r) for r in await container.webhooks.endpoints(client)]}


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    responses=PROBLEMS,
    summary="Remove an endpoint: nothing more is sent to it",
)
async def delete_endpoint(endpoint_id: str, client: Submitter, container: ContainerDep) -> Response:
    await container.webhooks.delete(client, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=AttemptList,
    responses=PROBLEMS,
    summary="Every attempt to the endpoint, newest first: event, time, answer or error, next try",
)
async def attempts(
    endpoint_id: str,
    client: Submitter,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Any:
    rows, next_cursor = await container.webhooks.attempts(client, endpoint_id, limit, cursor)
    items = [
        {
            "event_id": r.event_id, "type": r.type, "delivery_id": r.delivery_id,
            "attempted_at": r.attempted_at.isoformat(), "status_code": r.status_code,
            "error": r.error, "duration_ms": round(r.duration_ms, 1),
            "delivery_status": r.status,
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
        }
        for r in rows
    ]  # fmt: skip
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/events",
    response_model=EventList,
    responses=PROBLEMS,
    summary="The caller's events in order, after a cursor: a feed to poll",
)
async def feed(
    client: Evaluator,
    container: ContainerDep,
    after: Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]
    = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    key = key_of(container.database.engine.dialect)
    position = 0
    if after is not None:
        try:
            position = decode_cursor(after, key)
        except ValueError as exc:
            raise invalid(["query", "after"], str(exc)) from None
    rows = await container.webhooks.feed(client, position, limit)
    last = rows[-1].position if rows else position
    return {"items": [event_json(r) for r in rows], "next_cursor": encode_cursor(last, key)}


@router.post(
    "/events/{event_id}/redeliver",
    response_model=RedeliveredOut,
    status_code=202,
    responses=PROBLEMS,
    summary="Send an event again to every active endpoint of its recipient",
)
async def redeliver(event_id: str, client: Submitter, container: ContainerDep) -> Any:
    return {"deliveries": await container.webhooks.redeliver(client, event_id)}

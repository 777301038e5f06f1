"""Batches (graduate season): up to 1,000 applications in one request, decided in the
background, with progress and results per item (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from miaopi.api import batch_input
from miaopi.api.deps import ContainerDep, Submitter
from miaopi.api.errors import Problem
from miaopi.api.schemas import ProblemOut
from miaopi.api.spreadsheet import cell
from miaopi.api.strict_json import strict_json
from miaopi.eligibility.model import canonical_json
from miaopi.records import batches as batch_records
from miaopi.usecases import batches

router = APIRouter(prefix="/v1", tags=["batches"])

BATCH_PATH = re.compile(r"/v1/application-batches")
MAX_BATCH_BYTES = 4 * 1024 * 1024  # 1,000 applications with room to spare
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 413, 415, 422, 429)
}
_ITEM = {"type": "object", "required": ["item_key"], "additionalProperties": True,
         "properties": {"item_key": {"type": "string", "minLength": 1, "maxLength": 100}},
         "description": "item_key and an application body (as POST /v1/applications)"}  # fmt: skip
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["items"], "additionalProperties": False,
                "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 1000,
                                         "items": _ITEM}},
            }},
            "text/csv": {"schema": {"type": "string",
                                    "description": "UTF-8, a header row: " +
                                    ", ".join(batch_input.CSV_COLUMNS)}},
        },
    }
}  # fmt: skip


@router.post(
    "/application-batches",
    status_code=202,
    responses={**PROBLEMS, 202: {"description": "Accepted: decided in the background"}},
    openapi_extra=_BODY,
    summary="Submit up to 1,000 applications (JSON items or a CSV upload)",
)
async def submit_batch(
    request: Request,
    client: Submitter,
    container: ContainerDep,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, description="The same batch again")
    ] = None,
) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if media == "application/json":
        items = batch_input.from_json(strict_json(raw))
    elif media == "text/csv":
        items = batch_input.from_csv(raw)
    else:
        raise Problem(
            415, "a batch is JSON ({\"items\": [...]}) or a text/csv upload",
            slug="unsupported-media-type",
            errors=[{"loc": ["header", "content-type"],
                     "msg": "application/json or text/csv"}],
        )  # fmt: skip
    canonical = canonical_json([[i.row, i.item_key, i.body, i.errors] for i in items])
    batch_id = await batches.create(
        container.database, container.uow, client, items, canonical_body=canonical,
        idempotency_key=idempotency_key, now=container.clock(),
    )  # fmt: skip
    return JSONResponse(
        await _status(container, client, batch_id),
        status_code=202,
        headers={"Location": f"/v1/application-batches/{batch_id}"},
    )


async def _status(container: ContainerDep, client: Any, batch_id: str) -> dict[str, Any]:
    found = await batches.owned(container.database, client, batch_id)
    counts = await container.database.run(batch_records.counts, batch_id)
    return {
        "batch_id": found.id,
        "status": found.status,
        "total": found.total,
        "done_count": sum(counts.values()),
        "counts": counts,
        "created_at": found.created_at.isoformat(),
        "completed_at": found.completed_at.isoformat() if found.completed_at else None,
    }


@router.get(
    "/application-batches/{batch_id}",
    responses=PROBLEMS,
    summary="A batch's progress: status, how many are done, counts by outcome",
)
async def read_batch(batch_id: str, client: Submitter, container: ContainerDep) -> Any:
    return await _status(container, client, batch_id)


@router.get(
    "/application-batches/{batch_id}/results",
    responses={
        **PROBLEMS,
        200: {"content": {"application/json": {}, "text/csv": {}}, "description": "Per item"},
    },
    summary="A batch's results, one per item: its case, or why it is invalid (Accept: text/csv)",
)
async def batch_results(
    batch_id: str, request: Request, client: Submitter, container: ContainerDep
) -> Any:
    await batches.owned(container.database, client, batch_id)
    rows = await container.database.run_in_thread(batch_records.results, batch_id)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            _csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"'},
        )
    return {"items": [_result(r) for r in rows]}


def _result(row: Any) -> dict[str, Any]:
    return {
        "row": row.row, "item_key": row.item_key, "status": row.status,
        "outcome": row.outcome, "case_id": row.case_id, "errors": row.errors,
    }  # fmt: skip


def _csv(rows: list[Any]) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 only with a byte-order mark
    writer = csv.writer(out)
    writer.writerow(("row", "item_key", "status", "outcome", "case_id", "errors"))
    for r in rows:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in (r.errors or [])
        )
        writer.writerow(cell(v) for v in (r.row, r.item_key, r.status, r.outcome, r.case_id,
                                          errors))  # fmt: skip
    return out.getvalue()

"""Documents for the counter review (policy §9): the submitter uploads, the reviewers read.

An upload is ``multipart/form-data`` with the fields ``item`` (the index of the request's item
it answers) and ``file``. It is streamed: ``BodyLimit`` stops a body past the document's cap
plus its envelope while it arrives, and the parser spools the file to disk past 1 MB, so a
large upload never sits whole in memory until it is known to be within the cap.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from miaopi.api.deps import ContainerDep, DocumentReader, Submitter
from miaopi.api.errors import Problem, invalid
from miaopi.api.review_schemas import DocumentList, UploadedOut
from miaopi.api.schemas import ProblemOut
from miaopi.usecases import documents
from miaopi.usecases.access import case_in_scope

router = APIRouter(prefix="/v1", tags=["counter review"])

UPLOAD_PATH = re.compile(r"/v1/applications/[^/]+/documents")
ENVELOPE_BYTES = 64 * 1024  # the multipart boundaries, part headers and the item field

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 413, 415, 422, 429)
}

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["item", "file"],
                    "properties": {
                        "item": {"type": "integer", "minimum": 0,
                                 "description": "Index of the request's item it answers"},
                        "file": {"type": "string", "format": "binary",
                                 "description": "PDF, JPEG or PNG, at most 10 MB"},
                    },
                }
            }
        },
    }
}  # fmt: skip


@router.post(
    "/applications/{case_id}/documents",
    response_model=UploadedOut,
    status_code=201,
    responses=PROBLEMS,
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a document for an item of the case's one-time notice (the submitter)",
)
async def upload(case_id: str, request: Request, client: Submitter, container: ContainerDep) -> Any:
    # Scope first: a stranger's upload is not read, and learns nothing of the case.
    await case_in_scope(container.uow, client, case_id)
    limit = container.settings.max_document_bytes
    item, content = await _read_form(request, limit)
    stored = await documents.upload_document(
        case_id, item, content, client, uow=container.uow, calendar=container.calendar,
        now=container.clock(),
    )  # fmt: skip
    return {
        "document_id": stored.document_id,
        "item": item,
        "sha256": stored.sha256,
        "media_type": stored.media_type,
        "size": stored.size,
        "request_complete": stored.complete,
    }


@router.get(
    "/applications/{case_id}/documents",
    response_model=DocumentList,
    responses=PROBLEMS,
    summary="The case's documents (the officer holding its review, its auditors, the admin)",
)
async def list_documents(case_id: str, client: DocumentReader, container: ContainerDep) -> Any:
    rows = await documents.documents_of(container.uow, client, case_id)
    return {"items": [_listed(r) for r in rows]}


@router.get(
    "/applications/{case_id}/documents/{document_id}",
    responses={
        **PROBLEMS,
        200: {
            "content": {t: {} for t in ("application/pdf", "image/jpeg", "image/png")},
            "description": "The document as uploaded",
        },
    },
    response_class=Response,
    summary="One document's content, as uploaded",
)
async def read_document(
    case_id: str, document_id: str, client: DocumentReader, container: ContainerDep
) -> Response:
    row = await documents.document(container.uow, client, case_id, document_id)
    return Response(
        row.content,
        media_type=row.media_type,
        headers={
            # Personal data: not kept by caches, not rendered as anything but its own type.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{row.id}"',
            "Digest": f"sha-256={row.sha256}",
        },
    )


def _listed(row: Any) -> dict[str, Any]:
    return {
        "document_id": row.id,
        "item": row.item,
        "sha256": row.sha256,
        "media_type": row.media_type,
        "size": row.size,
        "uploaded_at": row.uploaded_at.isoformat(),
    }


async def _read_form(request: Request, limit: int) -> tuple[int, bytes]:
    """(item, file content) of a multipart body; 413/415/422 problems naming the field."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise Problem(
            415,
            "upload a document as multipart/form-data with the fields item and file",
            slug="unsupported-media-type",
            errors=[{"loc": ["header", "content-type"], "msg": "must be multipart/form-data"}],
        )
    parser = MultiPartParser(
        request.headers, _stream(request), max_files=1, max_fields=1, max_part_size=64
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise invalid(["body"], f"not a readable multipart body: {exc.message}") from None
    except ClientDisconnect:
        # Gone, or cut off by BodyLimit, which has answered 413 already.
        raise Problem(400, "the body did not arrive whole", slug="incomplete-body") from None
    try:
        upload, item = form.get("file"), form.get("item")
        if not isinstance(upload, UploadFile):
            raise invalid(["body", "file"], "a file is required")
        if not isinstance(item, str) or not item.isdigit() or len(item) > 4:
            raise invalid(["body", "item"], "the index of the request's item, a whole number")
        content = await upload.read(limit + 1)
    finally:
        await form.close()
    if len(content) > limit:
        raise Problem(
            413,
            f"a document is at most {limit} bytes",
            slug="document-too-large",
            errors=[{"loc": ["body", "file"], "msg": f"over {limit} bytes"}],
        )
    return int(item), content


async def _stream(request: Request) -> AsyncGenerator[bytes, None]:
    async for chunk in request.stream():
        yield chunk

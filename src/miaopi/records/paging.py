"""Opaque ids and list cursors."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Select

from miaopi.records.engines import reading


def new_id() -> str:
    # 128 random bits: case and task ids cannot be guessed or enumerated. In hex, not URL-safe
    # base64: one id in 64 of those began with "-", which the audit CSV must quote so that a
    # spreadsheet does not read it as a formula, and the auditor's sheet then showed an id
    # that matched nothing in the API.
    return secrets.token_hex(16)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for; ValueError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        seq = json.loads(base64.urlsafe_b64decode(padded.encode()))["s"]
    except Exception as exc:
        raise ValueError("not a cursor issued by this service") from exc
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError("not a cursor issued by this service")
    return seq


def newest_first(
    engine: Engine, query: Select[Any], seq: ColumnElement[int], limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``query`` by descending ``seq``; the next cursor is None on the last page."""
    if cursor:
        query = query.where(seq < decode_cursor(cursor))
    with reading(engine) as conn:
        rows = list(conn.execute(query.order_by(seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].seq) if more and rows else None)

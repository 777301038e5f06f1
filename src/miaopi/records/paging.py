"""Opaque ids and list cursors."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Select

from miaopi.records.engines import reading
from miaopi.records.sealing import DataKey, key_of


def new_id() -> str:
    # 128 random bits: case and task ids cannot be guessed or enumerated. In hex, not URL-safe
    # base64: one id in 64 of those began with "-", which the audit CSV must quote so that a
    # spreadsheet does not read it as a formula, and the auditor's sheet then showed an id
    # that matched nothing in the API.
    return secrets.token_hex(16)


# Positions are database sequence numbers: a cursor that named one beyond a BIGINT gave a 500.
_MOST_SEQ = 2**63 - 1


def encode_cursor(seq: int, key: DataKey) -> str:
    """The position, with a keyed tag: a cursor the service did not issue is refused."""
    payload = str(seq).encode()
    signed = payload + b"." + key.tag("cursor", payload)
    return base64.urlsafe_b64encode(signed).decode().rstrip("=")


def decode_cursor(cursor: str, key: DataKey) -> int:
    """The position a cursor stands for; ValueError when it is not one this service issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload, _, tag = raw.partition(b".")  # digits, then the tag (which may hold a ".")
        if not payload.isdigit() or not hmac.compare_digest(tag, key.tag("cursor", payload)):
            raise ValueError("bad tag")
        seq = int(payload)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not a cursor issued by this service") from exc
    if seq > _MOST_SEQ:
        raise ValueError("not a cursor issued by this service")
    return seq


def newest_first(
    engine: Engine, query: Select[Any], seq: ColumnElement[int], limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``query`` by descending ``seq``; the next cursor is None on the last page."""
    key = key_of(engine.dialect)
    if cursor:
        query = query.where(seq < decode_cursor(cursor, key))
    with reading(engine) as conn:
        rows = list(conn.execute(query.order_by(seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].seq, key) if more and rows else None)

"""Console sessions: an API key exchanged for a server-side session.

The cookie holds 256 random bits; the database only their SHA-256, so a copy of it opens no
session. A session ends when its person signs out, after ``IDLE`` without a request, or
``ABSOLUTE`` after it began, whichever comes first. Each carries the CSRF token its forms
must send back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from miaopi.records.clients import Client, by_id
from miaopi.records.console_tables import console_sessions
from miaopi.records.engines import reading
from miaopi.records.writing import writing

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
ROLES = ("officer", "auditor", "registrar", "admin")


@dataclass(frozen=True)
class Session:
    client: Client
    csrf: str

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent, self.csrf)


def _hashed(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def begin(engine: Engine, client: Client, now: datetime) -> str:
    """A new session for the client; the id for its cookie."""
    session_id = secrets.token_urlsafe(32)
    with writing(engine) as conn:
        # Sessions past their time go when someone signs in: the table stays small.
        conn.execute(delete(console_sessions).where(
            (console_sessions.c.seen_at < now - IDLE)
            | (console_sessions.c.created_at < now - ABSOLUTE)
        ))  # fmt: skip
        conn.execute(insert(console_sessions).values(
            id_hash=_hashed(session_id), client_id=client.id, csrf=secrets.token_urlsafe(32),
            created_at=now, seen_at=now,
        ))  # fmt: skip
    return session_id


def current(engine: Engine, session_id: str, now: datetime) -> Session | None:
    """The live session of the cookie, its idle time restarted; None if it has ended (or its
    client was revoked since)."""
    key = _hashed(session_id)
    with reading(engine) as conn:
        row = conn.execute(
            select(console_sessions).where(console_sessions.c.id_hash == key)
        ).first()
    if row is None or now - row.seen_at > IDLE or now - row.created_at > ABSOLUTE:
        return None
    client = by_id(engine, row.client_id)
    if client is None or not client.active or client.role not in ROLES:
        return None
    with writing(engine) as conn:
        conn.execute(update(console_sessions).where(console_sessions.c.id_hash == key)
                     .values(seen_at=now))  # fmt: skip
    return Session(client, row.csrf)


def end(engine: Engine, session_id: str) -> None:
    with writing(engine) as conn:
        conn.execute(
            delete(console_sessions).where(console_sessions.c.id_hash == _hashed(session_id))
        )

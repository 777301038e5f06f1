"""API clients and their keys.

A key looks like ``mp_<prefix>_<secret>``. The prefix identifies the key (it is shown in
listings and logs); only a salted SHA-256 of the whole key is stored, and it is compared in
constant time. Keys are random 256-bit secrets, so a slow password hash would add nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from miaopi.domain import Role
from miaopi.records.engines import reading_one
from miaopi.records.prepared import Prepared
from miaopi.records.tables import clients
from miaopi.records.writing import writing


@dataclass(frozen=True, slots=True)
class Client:
    id: int
    role: Role
    name: str
    key_prefix: str
    uscc: str | None = None
    district: str | None = None
    active: bool = True


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()


def create_client(
    engine: Engine,
    role: Role,
    name: str,
    uscc: str | None = None,
    district: str | None = None,
) -> tuple[Client, str]:
    """A new client and its key; the key is not stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    key = f"mp_{prefix}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    with writing(engine) as conn:
        client_id = conn.execute(
            insert(clients)
            .values(
                key_prefix=prefix,
                key_salt=salt,
                key_hash=_hash(salt, key),
                role=role,
                name=name,
                uscc=uscc,
                district=district,
                active=True,
                created_at=datetime.now(UTC),
            )
            .returning(clients.c.id)
        ).scalar_one()
    return Client(client_id, role, name, prefix, uscc, district), key


_BY_PREFIX = Prepared(  # asked for every request (see prepared.py)
    select(clients).where(clients.c.key_prefix == bindparam("prefix"))
)


def authenticate(engine: Engine, key: str) -> Client | None:
    parts = key.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != "mp" or not parts[1] or not parts[2]:
        return None
    with reading_one(engine) as conn:
        row = _BY_PREFIX.first(conn, {"prefix": parts[1]})
    if row is None:
        # Spend the same work as a real comparison so timing does not reveal valid prefixes.
        hmac.compare_digest(_hash("00" * 16, key), "0" * 64)
        return None
    if not hmac.compare_digest(_hash(row.key_salt, key), row.key_hash) or not row.active:
        return None
    return Client(row.id, row.role, row.name, row.key_prefix, row.uscc, row.district, row.active)


def key_prefix_of(given: str) -> str:
    """The prefix of a key as an operator may give it: the whole key ``mp_<prefix>_<secret>``,
    ``mp_<prefix>``, or the prefix alone (what ``miaopi clients create`` printed)."""
    parts = given.strip().split("_", 2)
    return parts[1] if parts[0] == "mp" and len(parts) > 1 else given.strip()


def revoke_client(engine: Engine, key_or_prefix: str) -> Client | None:
    """Revoke the active key given by itself or its prefix; the client it was, or None."""
    prefix = key_prefix_of(key_or_prefix)
    with writing(engine) as conn:
        row = conn.execute(
            update(clients)
            .where(clients.c.key_prefix == prefix, clients.c.active.is_(True))
            .values(active=False, revoked_at=datetime.now(UTC))
            .returning(clients)
        ).first()
    if row is None:
        return None
    return Client(row.id, row.role, row.name, row.key_prefix, row.uscc, row.district, False)


def by_id(engine: Engine, client_id: int) -> Client | None:
    """The client as stored (a batch is decided as its submitter, later, in the background)."""
    with reading_one(engine) as conn:
        row = conn.execute(select(clients).where(clients.c.id == client_id)).first()
    if row is None:
        return None
    return Client(row.id, row.role, row.name, row.key_prefix, row.uscc, row.district, row.active)


def listed(engine: Engine) -> list[Any]:
    """Every client, newest first, as the admin's page lists them (no key hash)."""
    with reading_one(engine) as conn:
        return list(conn.execute(select(
            clients.c.key_prefix, clients.c.role, clients.c.name, clients.c.uscc,
            clients.c.district, clients.c.active, clients.c.created_at,
        ).order_by(clients.c.id.desc())))  # fmt: skip

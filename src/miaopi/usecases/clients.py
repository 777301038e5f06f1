"""API clients made and revoked by the authority (the CLI and the console's admin page)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Engine

from miaopi.domain import ROLES
from miaopi.identifiers import credit_code
from miaopi.records.clients import Client, create_client, key_prefix_of, revoke_client
from miaopi.supervision.queue import assign_waiting, release_auditor
from miaopi.usecases.errors import InvalidInput, NotFound


def checked(role: str, uscc: str | None, district: str | None) -> tuple[str | None, str | None]:
    """(uscc, district) as the role needs them; ``InvalidInput`` naming the field otherwise."""
    if role not in ROLES:
        raise InvalidInput(["role"], f"must be one of {', '.join(ROLES)}")
    if role == "employer":
        try:
            uscc = credit_code(uscc or "")
        except ValueError as exc:
            raise InvalidInput(["uscc"], f"an employer needs a valid USCC: {exc}") from None
    elif uscc:
        raise InvalidInput(["uscc"], "only employers are bound to a USCC")
    if role in ("auditor", "officer"):
        if not district or not re.fullmatch(r"\d{6}", district):
            raise InvalidInput(["district"], f"an {role} needs a 6-digit district")
    elif district:
        raise InvalidInput(["district"], "only auditors and officers have a district")
    return uscc, district


def create(
    engine: Engine, role: str, name: str, uscc: str | None, district: str | None, now: datetime
) -> tuple[Client, str, int]:
    """The client, its key (shown once) and how many waiting audit tasks it was given."""
    uscc, district = checked(role, uscc, district)
    if not name.strip():
        raise InvalidInput(["name"], "say who the client is")
    client, key = create_client(engine, role, name.strip(), uscc=uscc, district=district)  # type: ignore[arg-type]
    # Tasks that waited for an auditor from another district may now have one.
    assigned = assign_waiting(engine, now) if role == "auditor" else 0
    return client, key, assigned


def revoke(engine: Engine, key_or_prefix: str, now: datetime) -> tuple[Client, int]:
    """The client revoked, and how many of an auditor's open tasks went to others."""
    client = revoke_client(engine, key_prefix_of(key_or_prefix))
    if client is None:
        raise NotFound("no active key with this prefix")
    moved = release_auditor(engine, client.id, now) if client.role == "auditor" else 0
    return client, moved


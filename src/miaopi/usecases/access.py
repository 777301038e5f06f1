"""Who may see which cases (contract: a case outside the caller's scope is not found)."""

from __future__ import annotations

from typing import Any

from miaopi.records.cases import Scope
from miaopi.records.clients import Client
from miaopi.usecases.errors import NotFound
from miaopi.usecases.unit_of_work import UnitOfWork


def scope_of(client: Client) -> Scope:
    """The cases a client may see: all, its employer's, the ones it submitted, or its tasks'."""
    if client.role == "admin":
        return Scope("all")
    if client.role == "employer":
        return Scope("employer", client.uscc)
    if client.role == "channel":
        return Scope("submitted_by", client.id)
    return Scope("auditor", client.id)  # the cases of their own tasks


def own_tasks(client: Client) -> int | None:
    """Whose audit tasks the client sees: an auditor their own (their id), an admin
    everyone's (None)."""
    return None if client.role == "admin" else client.id


async def case_in_scope(uow: UnitOfWork, client: Client, case_id: str) -> Any:
    """The case, if the client may see it; ``NotFound`` otherwise, never saying it exists."""
    row = await uow.case(case_id, scope_of(client))
    if row is None:
        raise NotFound("case not found")
    return row

"""Close an audit task with findings; a ``revoked`` outcome revokes the approval (§8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from miaopi.eligibility.dates import today_in_shanghai
from miaopi.records.clients import Client
from miaopi.supervision.tasks import TaskClosed, TaskNotFound
from miaopi.usecases.errors import Conflict, InvalidInput, NotFound
from miaopi.usecases.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Findings:
    checks: dict[str, Any]  # completeness, consistency, compliance (ok / issue) and notes
    outcome: Literal["confirmed", "revoked"]
    reason: str | None = None


async def close_task(
    task_id: str, findings: Findings, auditor: Client, *, uow: UnitOfWork, now: datetime
) -> None:
    """The task closed, its revocation and fraud bar recorded with it, or nothing at all."""
    if findings.outcome == "revoked" and not findings.reason:
        raise InvalidInput(["body", "reason"], "a revocation needs its reason")
    try:
        await uow.close_task(
            task_id=task_id,
            auditor_id=auditor.id,
            findings=findings.checks,
            outcome=findings.outcome,
            reason=findings.reason,
            now=now,
            today=today_in_shanghai(now),
        )
    except TaskNotFound:
        raise NotFound("task not found") from None
    except TaskClosed:
        raise Conflict("task-closed", "this task is closed already; a closure is final") from None

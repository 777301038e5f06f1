"""Fakes of miaopi's own ports, so the use cases are tested without a database.

Registries are not faked here: the tests ask the mock registries over HTTP, as elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from miaopi.evidence.ports import Evidence, RevocationRegister
from miaopi.records.cases import IdempotencyRace, NewCase, Scope
from miaopi.records.ledger import DOCUMENTS
from miaopi.supervision.tasks import TaskClosed, TaskNotFound
from miaopi.usecases.unit_of_work import UnitOfWork


class FakeUnitOfWork(UnitOfWork):
    """Cases, idempotency claims and logged queries in memory; each call all or nothing."""

    def __init__(self) -> None:
        self.cases: dict[str, SimpleNamespace] = {}
        self.claims: dict[tuple[int, str], tuple[str, str]] = {}
        self.logged: list[dict[str, Any]] = []
        self.closed: dict[str, dict[str, Any]] = {}
        self.tasks: set[str] = set()
        self.definitions: dict[str, dict[str, Any]] = {}
        self.numbers = 0
        # Runs inside ``record`` before it claims the key: a concurrent request's commit.
        self.before_claim: Callable[[], None] | None = None

    def body_hash(self, canonical_body: bytes) -> str:
        return hashlib.sha256(b"key|" + canonical_body).hexdigest()

    async def find_idempotent(self, client_id: int, key: str) -> tuple[str, str] | None:
        return self.claims.get((client_id, key))

    async def record(
        self, new: NewCase, city_prefix: str, idempotency: tuple[int, str, str] | None
    ) -> Any:
        if self.before_claim is not None:
            self.before_claim()
            self.before_claim = None
        if idempotency is not None and idempotency[:2] in self.claims:
            raise IdempotencyRace
        row = SimpleNamespace(
            **{**new.row, **{name: getattr(new, name) for name in DOCUMENTS}},
            revoked_at=None,
            revocation_reason=None,
        )
        if new.status == "approved":
            self.numbers += 1
            row.approval_number = f"{city_prefix}-{new.application_date.year}-{self.numbers:06d}"
        self.cases[row.id] = row
        self.definitions.setdefault(new.ruleset_fingerprint, new.ruleset_definition)
        if idempotency is not None:
            client_id, key, body_hash = idempotency
            self.claims[(client_id, key)] = (body_hash, row.id)
        self.logged += [{**e, "purpose": "decision", "case_id": row.id} for e in new.evidence]
        return row

    async def case(self, case_id: str, scope: Scope) -> Any | None:
        row = self.cases.get(case_id)
        if row is None or scope.kind == "all":
            return row
        if scope.kind == "employer":
            return row if row.employer_uscc == scope.value else None
        if scope.kind == "submitted_by":
            return row if row.submitted_by == scope.value else None
        return None  # an auditor's tasks: none in this fake

    async def log_queries(self, evidence: list[dict[str, Any]], purpose: str, **who: Any) -> None:
        self.logged += [{**e, "purpose": purpose, **who} for e in evidence]

    async def close_task(self, **closure: Any) -> None:
        task_id = closure["task_id"]
        if task_id not in self.tasks:
            raise TaskNotFound(task_id)
        if task_id in self.closed:
            raise TaskClosed(task_id)
        self.closed[task_id] = closure

    async def ruleset_definition(self, fingerprint: str) -> dict[str, Any] | None:
        return self.definitions.get(fingerprint)


class NoBars(RevocationRegister):
    """This city's register of fraud bars, holding none."""

    async def bars_of(self, id_number: str) -> Evidence:
        return Evidence(
            "revocations", "bars_of", "ok", datetime.now(UTC), 0.0, record={"fraud_bars": []}
        )

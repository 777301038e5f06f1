"""The unit of work: what the use cases need of storage, each call one transaction.

``record`` is the decision's transaction: the case, its idempotency claim, its registry
queries, its event, its ledger entry and, for an approval, its supervision queue entry, all or
nothing. The database's implementation is ``records/unit_of_work.py``; the tests' fake keeps
cases in memory, so the use cases are tested without a database.
"""

from __future__ import annotations

import abc
from datetime import date
from typing import Any

from miaopi.records.access_log import Purpose
from miaopi.records.cases import NewCase, Scope
from miaopi.records.documents import Upload


class UnitOfWork(abc.ABC):
    @abc.abstractmethod
    def body_hash(self, canonical_body: bytes) -> str:
        """The keyed hash an Idempotency-Key records of the body (no body is stored)."""

    @abc.abstractmethod
    async def find_idempotent(self, client_id: int, key: str) -> tuple[str, str] | None:
        """(recorded body hash, case id) of a key the client used before, or None."""

    @abc.abstractmethod
    async def record(
        self, new: NewCase, city_prefix: str, idempotency: tuple[int, str, str] | None
    ) -> Any:
        """Record a decided case in one transaction; the case as stored.

        Raises ``cases.IdempotencyRace`` when ``idempotency`` (client id, key, body hash) was
        claimed by a concurrent request, in which case nothing was recorded.
        """

    @abc.abstractmethod
    async def case(self, case_id: str, scope: Scope) -> Any | None:
        """The case if it is within ``scope``."""

    @abc.abstractmethod
    async def log_queries(
        self, evidence: list[dict[str, Any]], purpose: Purpose, **who: Any
    ) -> None:
        """Record registry queries that belong to no recorded case (a dry run's)."""

    @abc.abstractmethod
    async def close_task(self, **closure: Any) -> None:
        """Close an audit task (``supervision.tasks.close_task``'s arguments) in one
        transaction; raises ``TaskNotFound`` or ``TaskClosed``."""

    @abc.abstractmethod
    async def reviews(
        self, limit: int, cursor: str | None, status: str | None, overdue: bool | None, today: date
    ) -> tuple[list[Any], str | None]:
        """A page of the counter review's queue, newest first, and the next cursor."""

    @abc.abstractmethod
    async def review(self, review_id: str) -> Any | None:
        """One review with its case's summary."""

    @abc.abstractmethod
    async def review_of_case(self, case_id: str) -> Any | None:
        """The case's review, if it was referred."""

    @abc.abstractmethod
    async def claim_review(self, **claim: Any) -> None:
        """``reviews.claim`` in one transaction; raises its exceptions."""

    @abc.abstractmethod
    async def decide_review(self, **decision: Any) -> None:
        """``reviews.decide`` in one transaction; raises its exceptions."""

    @abc.abstractmethod
    async def second_tries(self, case_id: str) -> list[Any]:
        """The case's automatic second tries, decided and scheduled, in order."""

    @abc.abstractmethod
    async def request_documents(self, **request: Any) -> None:
        """``documents.request`` in one transaction; raises its exceptions."""

    @abc.abstractmethod
    async def upload_document(self, upload: Upload, **when: Any) -> tuple[str, bool]:
        """``documents.upload`` in one transaction: (document id, request complete)."""

    @abc.abstractmethod
    async def documents(self, case_id: str) -> list[Any]:
        """The case's documents, without their content, in the order they came."""

    @abc.abstractmethod
    async def document(self, case_id: str, document_id: str) -> Any | None:
        """One of the case's documents with its content."""

    @abc.abstractmethod
    async def ruleset_definition(self, fingerprint: str) -> dict[str, Any] | None:
        """The stored definition of a rule version, by its fingerprint."""

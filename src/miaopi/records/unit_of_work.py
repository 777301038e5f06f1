"""The unit of work on the database: each call one transaction, run where ``Database`` says."""

from __future__ import annotations

from datetime import date
from typing import Any

from miaopi.records import access_log, cases, documents, reviews, second_tries
from miaopi.records.access_log import Purpose
from miaopi.records.cases import NewCase, Scope
from miaopi.records.database import Database
from miaopi.records.sealing import key_of
from miaopi.supervision import tasks
from miaopi.usecases.unit_of_work import UnitOfWork


class DatabaseUnitOfWork(UnitOfWork):
    def __init__(self, database: Database) -> None:
        self.database = database

    def body_hash(self, canonical_body: bytes) -> str:
        return key_of(self.database.engine.dialect).body_hash(canonical_body)

    async def find_idempotent(self, client_id: int, key: str) -> tuple[str, str] | None:
        return await self.database.run(cases.find_idempotent, client_id, key)

    async def record(
        self, new: NewCase, city_prefix: str, idempotency: tuple[int, str, str] | None
    ) -> Any:
        return await self.database.run(cases.record, new, city_prefix, idempotency)

    async def case(self, case_id: str, scope: Scope) -> Any | None:
        return await self.database.run(cases.get, case_id, scope)

    async def log_queries(
        self, evidence: list[dict[str, Any]], purpose: Purpose, **who: Any
    ) -> None:
        await self.database.run(access_log.record_queries, evidence, purpose, **who)

    async def close_task(self, **closure: Any) -> None:
        await self.database.run_in_thread(lambda engine: tasks.close_task(engine, **closure))

    async def reviews(
        self, limit: int, cursor: str | None, status: str | None, overdue: bool | None, today: date
    ) -> tuple[list[Any], str | None]:
        return await self.database.run_in_thread(
            reviews.page, limit, cursor, status, overdue, today
        )

    async def review(self, review_id: str) -> Any | None:
        return await self.database.run(reviews.get, review_id)

    async def review_of_case(self, case_id: str) -> Any | None:
        return await self.database.run(reviews.of_case, case_id)

    async def claim_review(self, **claim: Any) -> None:
        await self.database.run(lambda engine: reviews.claim(engine, **claim))

    async def decide_review(self, **decision: Any) -> None:
        await self.database.run(lambda engine: reviews.decide(engine, **decision))

    async def second_tries(self, case_id: str) -> list[Any]:
        return await self.database.run(second_tries.of_case, case_id)

    async def request_documents(self, **request: Any) -> None:
        await self.database.run(lambda engine: documents.request(engine, **request))

    async def upload_document(self, upload: documents.Upload, **when: Any) -> tuple[str, bool]:
        # Sealing up to 10 MB is work the size of the data: off the event loop.
        return await self.database.run_in_thread(
            lambda engine: documents.upload(engine, upload, **when)
        )

    async def documents(self, case_id: str) -> list[Any]:
        return await self.database.run(documents.of_case, case_id)

    async def document(self, case_id: str, document_id: str) -> Any | None:
        return await self.database.run_in_thread(documents.content, case_id, document_id)

    async def ruleset_definition(self, fingerprint: str) -> dict[str, Any] | None:
        return await self.database.run_in_thread(cases.ruleset_definition, fingerprint)

"""The applicant's own view (policy §11): with the case id and its access code, and nothing
else, the person sees the case's status and stages and every registry query made about them,
for the case and in dry runs on their ID number (查询留痕).

The code is made with the case, answered once to its submitter to pass on, and stored only as
a keyed hash. A submitter who lost it issues a new one, which ends the old.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from miaopi.records import applicant, certificates
from miaopi.records.clients import Client
from miaopi.records.database import Database
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.errors import NotFound
from miaopi.usecases.stages import stages_of
from miaopi.usecases.unit_of_work import UnitOfWork

CODE_BYTES = 20  # 160 bits: guessing one is out of reach, rate limit or not


def new_access_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


@dataclass(frozen=True)
class ApplicantView:
    case: Any
    stages: list[dict[str, Any]]
    queries: list[Any]
    approval_number: str | None


@dataclass
class Applicants:
    database: Database
    uow: UnitOfWork
    clock: Callable[[], datetime]

    async def case(self, case_id: str, code: str) -> Any:
        """The case the code opens; ``NotFound`` for a wrong code as for an unknown case."""
        row = await self.database.run(applicant.case_by_code, case_id, code)
        if row is None:
            raise NotFound("case not found")
        return row

    async def view(self, row: Any) -> ApplicantView:
        """What the applicant sees of the case ``case`` found."""
        case_id = row.id
        stages = await stages_of(self.database, row)
        queries = await self.database.run(applicant.queries_about, case_id, row.applicant_id_hash)
        approval = await self.database.run(certificates.approval, case_id)
        number = approval.number if approval is not None and row.status == "approved" else None
        return ApplicantView(row, stages, queries, number)

    async def issue_code(self, client: Client, case_id: str) -> str:
        """A new access code for a case in the submitter's scope; the old one stops working."""
        await case_in_scope(self.uow, client, case_id)
        code = new_access_code()
        now = self.clock()
        await self.database.run(
            lambda engine: applicant.set_access_code(engine, case_id, code, client.id, now)
        )
        return code

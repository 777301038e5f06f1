"""The revocation register as evidence: the fraud bars this city issued, read from its database.

It answers like any registry, so a database fault is ``unavailable`` evidence (the criterion it
feeds becomes unknown and the case is referred), never an exception that loses the case.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from miaopi.evidence.ports import Evidence, RevocationRegister
from miaopi.records.database import Database
from miaopi.records.engines import reading_one
from miaopi.records.live_approvals import LIVE_OF
from miaopi.records.sealing import key_of
from miaopi.supervision.tasks import BARS_OF

log = logging.getLogger(__name__)


def own_records_of(engine: Engine, id_number: str) -> tuple[list[Any], list[Any]]:
    """This city's own records of a person, read together for every decision: the fraud bars
    it issued (``barred_on``, ``case_id``), oldest first, and the latest approval in force
    (``approved_on``, ``number``). One read, not two: it is on every decision's path."""
    with reading_one(engine) as conn:
        params = {"id_hash": key_of(conn.dialect).lookup_hash(id_number)}
        return BARS_OF.rows(conn, params), LIVE_OF.rows(conn, params)


class DbRevocationRegister(RevocationRegister):
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self.database, self.clock = database, clock

    async def bars_of(self, id_number: str) -> Evidence:
        queried_at, started = self.clock(), time.perf_counter()
        try:
            bars, approvals = await self.database.run(own_records_of, id_number)
        except SQLAlchemyError as exc:
            log.warning("revocation register unavailable: %s", type(exc).__name__)
            return Evidence(
                "revocations", "bars_of", "unavailable", queried_at,
                (time.perf_counter() - started) * 1000, detail="database error",
            )  # fmt: skip
        return Evidence(
            registry="revocations",
            query="bars_of",
            status="ok",
            queried_at=queried_at,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            reference="miaopi:fraud_bars",
            record={
                "fraud_bars": [{"revoked_on": r.barred_on.isoformat()} for r in bars],
                # The live approval (policy §5) travels with the bars: one read per decision.
                "approvals": [
                    {"approval_number": r.number, "approved_on": r.approved_on.isoformat()}
                    for r in approvals
                ],
            },
        )

"""The public notice (policy §11 核准公示): approvals published, masked, for 5 working days,
and objections from anyone, each opening (or joining) the case's audit task of kind
``objection``, assigned as a spot check's is: to an auditor from another district.

Nothing public names a person beyond the masked name: no ID number, no full name, no case id
(a notice is named by its approval number, which the certificate prints anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from miaopi.eligibility.calendar import CalendarError, WorkingCalendar
from miaopi.eligibility.dates import SHANGHAI, today_in_shanghai
from miaopi.evidence.recorded import employer_region
from miaopi.masking import mask_name
from miaopi.records import certificates, notices
from miaopi.records.database import Database
from miaopi.records.sealing import key_of
from miaopi.usecases.errors import Conflict, NotFound

log = logging.getLogger("miaopi.notices")
NOTICE_WORKING_DAYS = 5
# The longest run of days off (the Spring Festival's, with its weekends) is under 14 days.
_LOOK_BACK_DAYS = 21


@dataclass(frozen=True)
class Notice:
    notice_id: str  # the approval number
    business_type: str
    name: str  # masked
    employer_name: str | None
    employer_uscc: str
    approved_on: date
    objections_until: date


@dataclass
class Notices:
    database: Database
    calendar: Callable[[], WorkingCalendar]
    clock: Callable[[], datetime]

    def notice_until(self, approved_on: date) -> date:
        """The last day of the notice: the 5th working day after the approval's."""
        return self.calendar().add_working_days(approved_on, NOTICE_WORKING_DAYS)

    def first_day_on_notice(self, today: date) -> date:
        """The earliest approval day whose notice runs today."""
        first = today
        for back in range(1, _LOOK_BACK_DAYS):
            day = today - timedelta(days=back)
            try:
                if self.notice_until(day) < today:
                    break
            except CalendarError:
                break
            first = day
        return first

    async def page(
        self,
        *,
        from_day: date | None,
        to_day: date | None,
        business_type: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Notice], str | None]:
        today = today_in_shanghai(self.clock())
        first = self.first_day_on_notice(today)
        since_day = max(first, from_day) if from_day else first
        since = datetime.combine(since_day, time(), SHANGHAI)
        until = datetime.combine(to_day + timedelta(days=1), time(), SHANGHAI) if to_day else None
        rows = await self.database.run_in_thread(
            notices.approvals_since, since, until, business_type, cursor, limit + 1
        )
        found = []
        for row in rows[:limit]:
            approved_on = today_in_shanghai(row.decided_at)
            found.append(Notice(
                notice_id=row.approval_number, business_type=row.business_type,
                name=mask_name(row.applicant_name), employer_name=row.employer_name,
                employer_uscc=row.employer_uscc, approved_on=approved_on,
                objections_until=self.notice_until(approved_on),
            ))  # fmt: skip
        next_cursor = rows[limit - 1].approval_number if len(rows) > limit else None
        return found, next_cursor

    async def object(
        self, notice_id: str, reason: str, address: str,
        before_recording: Callable[[], None] = lambda: None,
    ) -> tuple[str, date]:  # fmt: skip
        """(objection id, the day it will have been looked into by): the objection recorded
        on the case's objection task. 404 for no such notice; 409 once the notice is over."""
        case_id = await self.database.run(certificates.case_of_number, notice_id)
        approval = await self.database.run(certificates.approval, case_id) if case_id else None
        if approval is None or approval.number != notice_id:
            raise NotFound("no notice has this id")
        now = self.clock()
        today = today_in_shanghai(now)
        if approval.case.status != "approved":
            raise Conflict("notice-closed", "the approval was revoked: its notice is over")
        if self.notice_until(today_in_shanghai(approval.decided_at)) < today:
            raise Conflict("notice-closed", "the notice period of this approval is over")
        try:
            due = self.calendar().review_due(today)
        except CalendarError as exc:  # pragma: no cover - the horizon is checked at start
            log.error("no due date for an objection: %s", exc)
            due = today + timedelta(days=14)
        before_recording()
        key = key_of(self.database.engine.dialect)
        objection_id, _ = await self.database.run(
            lambda engine: notices.record_objection(
                engine, case_id=approval.case.id, approval_number=notice_id, reason=reason,
                address_hash=key.lookup_hash(f"address|{address}"),
                employer_region=employer_region(approval.case.evidence), due_date=due, now=now,
            )
        )  # fmt: skip
        return objection_id, due

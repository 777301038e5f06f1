"""Approval certificates (policy.md §11): issued once per approval, verified by anyone.

The certificate is signed when first asked for (never on the decision's request path) and is
the same token ever after. The keys and the revocation list are public, so the police station
verifies offline; the online check needs no account and says only valid, revoked or invalid,
and whether a typed ID number is the certificate's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from miaopi.certificates import pdf, tokens
from miaopi.eligibility.dates import today_in_shanghai
from miaopi.masking import mask_name
from miaopi.records import certificates
from miaopi.records.clients import Client
from miaopi.records.database import Database
from miaopi.usecases.access import case_in_scope
from miaopi.usecases.errors import Conflict, NotFound
from miaopi.usecases.unit_of_work import UnitOfWork


def _a_year_on(day: date) -> date:
    """The same day a year later; 29 February gives 28 February (as ages do)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


@dataclass
class Certificates:
    database: Database
    uow: UnitOfWork
    key: OKPKey
    city_prefix: str
    clock: Callable[[], datetime]
    titles: Callable[[str], dict[str, str]]
    font: Path | None = None

    _published: bool = False

    async def _publish_key(self) -> None:
        """Publish the key in use, once a process (before it first signs or verifies): every
        other key is retired, and stays published."""
        if self._published:
            return
        kid, public = str(self.key.kid), self.public_jwk(self.key)
        await self.database.run(
            lambda engine: certificates.publish_key(engine, kid, public, self.clock())
        )
        self._published = True

    @staticmethod
    def public_jwk(key: OKPKey) -> dict[str, Any]:
        return {**key.as_dict(private=False), "use": "sig", "alg": tokens.ALG}

    async def jwks(self) -> dict[str, Any]:
        await self._publish_key()
        rows = await self.database.run(certificates.published_keys)
        return {"keys": [r.public_jwk for r in rows]}

    async def certificate(self, client: Client, case_id: str) -> Any:
        """The approved case's certificate, signed now if it is the first time."""
        case = await case_in_scope(self.uow, client, case_id)
        return await self.issued(case_id, case.status)

    async def printed(self, found: Any) -> bytes:
        """The certificate as the applicant's PDF (``pdf.FontMissing`` with no font to print
        with). Rendered in a thread, on request only: never on a decision's path."""
        font = pdf.find_font(self.font)
        claims = tokens.payload(found.token)
        title = self.titles(str(claims.get("business_type", "")))
        return await asyncio.to_thread(
            pdf.render, found.token, claims, title, found.kid, found.issued_at, font
        )

    async def issued(self, case_id: str, status: str) -> Any:
        """The certificate of a case already found in the caller's scope."""
        if status == "revoked":
            raise Conflict("revoked", "the approval was revoked: its certificate is void")
        found = await self.database.run(certificates.issued, case_id)
        if found is not None:
            return found
        approval = await self.database.run(certificates.approval, case_id)
        if approval is None:  # pragma: no cover - in scope, so it exists
            raise NotFound("case not found")
        case, number, decided_at = approval.case, approval.number, approval.decided_at
        if case.status == "revoked":
            raise Conflict("revoked", "the approval was revoked: it has no certificate")
        if case.status != "approved" or number is None:
            raise Conflict("not-approved", "only an approved case has a certificate")
        await self._publish_key()
        decided_on = today_in_shanghai(decided_at)
        salt = tokens.new_salt()
        # scrypt takes tens of milliseconds: in a thread, off the event loop.
        binding = await asyncio.to_thread(tokens.id_binding, case.applicant_id_number, salt)
        claims = {
            "iss": f"miaopi:{self.city_prefix}",
            "approval_number": number,
            "business_type": case.business_type,
            "name": mask_name(case.applicant_name),
            "employer": {"uscc": case.employer_uscc, "name": case.employer_name},
            "decided_on": decided_on.isoformat(),
            "expires_on": _a_year_on(decided_on).isoformat(),
            "ruleset": {"version": case.ruleset_version,
                        "fingerprint": case.ruleset_fingerprint},
            "id_salt": salt,
            "id_binding": binding,
            "iat": int(self.clock().timestamp()),
        }  # fmt: skip
        token = tokens.sign_certificate(self.key, claims)
        return await self.database.run(
            lambda engine: certificates.store(
                engine, case=case, approval_number=number, kid=str(self.key.kid), token=token,
                now=self.clock(),
            )
        )  # fmt: skip

    async def revocations(self) -> tuple[str, datetime]:
        """The signed list of revoked approval numbers, as of now."""
        await self._publish_key()
        numbers = await self.database.run_in_thread(certificates.revoked_numbers)
        now = self.clock()
        return tokens.sign_revocations(self.key, numbers, now), now

    async def verify(self, token: str, id_number: str | None) -> tokens.Verdict:
        jwks = await self.jwks()
        revoked = set(await self.database.run_in_thread(certificates.revoked_numbers))
        now = self.clock()
        today = today_in_shanghai(now).isoformat()
        verdict = await asyncio.to_thread(tokens.verify, token, jwks, revoked, today, id_number)
        number = (verdict.claims or {}).get("approval_number")
        await self.database.run(
            lambda engine: certificates.record_check(
                engine, verdict.status, str(number) if number else None, now
            )
        )
        return verdict

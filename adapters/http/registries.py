"""HTTP clients for the registries, one class per port."""

from __future__ import annotations

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.records import (
    CertificationList,
    Diploma,
    DiplomaList,
    EmployerCredit,
    OverseasCertification,
    PersonCredit,
    PoliceRecord,
    PostdocHistory,
    SocialSecurityHistory,
    Title,
)
from miaopi.evidence.ports import (
    CreditRegistry,
    EducationRegistry,
    Evidence,
    HrssRegistry,
    OverseasCredentialsRegistry,
    PoliceRegistry,
    SocialSecurityRegistry,
)


class HttpPoliceRegistry(PoliceRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def person(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "person", "persons/lookup", {"id_number": id_number}, PoliceRecord
        )


class HttpEducationRegistry(EducationRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def diploma(self, diploma_no: str) -> Evidence:
        return await self._http.lookup(
            "diploma", "diplomas/lookup", {"diploma_no": diploma_no}, Diploma
        )

    async def diplomas_of(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "diplomas_of", "diplomas/by-holder", {"id_number": id_number}, DiplomaList
        )


class HttpCreditRegistry(CreditRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def person(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "person", "persons/lookup", {"id_number": id_number}, PersonCredit
        )

    async def employer(self, uscc: str) -> Evidence:
        return await self._http.lookup(
            "employer", "employers/lookup", {"uscc": uscc}, EmployerCredit
        )


class HttpOverseasCredentialsRegistry(OverseasCredentialsRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def certification(self, certification_no: str) -> Evidence:
        return await self._http.lookup(
            "certification",
            "certifications/lookup",
            {"certification_no": certification_no},
            OverseasCertification,
        )

    async def certifications_of(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "certifications_of",
            "certifications/by-holder",
            {"id_number": id_number},
            CertificationList,
        )


class HttpSocialSecurityRegistry(SocialSecurityRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def history(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "history", "contributions/lookup", {"id_number": id_number}, SocialSecurityHistory
        )


class HttpHrssRegistry(HrssRegistry):
    def __init__(self, http: RegistryHttpClient) -> None:
        self._http = http

    async def title(self, title_certificate_no: str) -> Evidence:
        return await self._http.lookup(
            "title", "titles/lookup", {"title_certificate_no": title_certificate_no}, Title
        )

    async def postdoc(self, id_number: str) -> Evidence:
        return await self._http.lookup(
            "postdoc", "postdocs/lookup", {"id_number": id_number}, PostdocHistory
        )

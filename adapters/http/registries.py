"""HTTP clients for the registries, one class per port."""

from __future__ import annotations

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.ports import CreditRegistry, EducationRegistry, Evidence, PoliceRegistry
from miaopi.adapters.records import Diploma, EmployerCredit, PersonCredit, PoliceRecord


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

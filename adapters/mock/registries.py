"""Mock registries: ASGI apps that answer like the real ones, from a dataset.

Each registry is its own app, so in-process wiring can give each HTTP client its own transport
exactly as if the registries were separate servers; ``server_app`` mounts them all under
``/{registry}/`` for ``miaopi mock serve``. Per-person ``faults`` make a registry misbehave for
that person: ``timeout`` never answers in time, ``error`` answers 500, ``malformed`` answers
something that is not the agreed format.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from miaopi.adapters.mock.dataset import Dataset, PersonIn

# Long enough to outlast any client deadline, short enough not to pile up on a server.
_HANG_S = 30.0
_counter = itertools.count(1)


def _reference(code: str) -> str:
    return f"{code}-{datetime.now(UTC):%Y%m%d}-{next(_counter):08d}"


Handler = Callable[[dict], tuple[PersonIn | None, dict | None]]


def _endpoint(
    registry: str, code: str, key: str, find: Handler, latency_ms: float
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get(key), str):
            return JSONResponse({"error": f"{key} is required"}, status_code=400)
        person, record = find(body)
        fault = person.faults.get(registry) if person else None  # type: ignore[call-overload]
        if fault == "timeout":
            await asyncio.sleep(_HANG_S)
        elif fault == "error":
            return JSONResponse({"error": "internal error"}, status_code=500)
        elif fault == "malformed":
            return Response(
                b'{"reference": "' + code.encode() + b'", "record": {"na',
                200,
                media_type="application/json",
            )
        if record is None:
            return JSONResponse({"reference": _reference(code)}, status_code=404)
        return Response(
            json.dumps(
                {"reference": _reference(code), "record": record}, ensure_ascii=False, default=str
            ),
            media_type="application/json",
        )

    return endpoint


def _app(
    registry: str, code: str, latency_ms: float, routes: list[tuple[str, str, Handler]]
) -> Starlette:
    """One registry: a ``POST {path}`` endpoint per (path, key field, lookup)."""
    return Starlette(
        routes=[
            Route(path, _endpoint(registry, code, key, find, latency_ms), methods=["POST"])
            for path, key, find in routes
        ]
    )


def _person_query(ds: Dataset, build: Callable[[PersonIn], dict]) -> Handler:
    """A lookup by ID number: no record for persons the dataset does not hold."""

    def find(body: dict) -> tuple[PersonIn | None, dict | None]:
        p = ds.persons.get(body["id_number"].upper())
        return (None, None) if p is None else (p, build(p))

    return find


def _held(p: PersonIn, item: Any) -> dict:
    """A certificate as a registry states it: its data and its holder's ID number."""
    return {"holder_id_number": p.id_number, **item.model_dump()}


def police_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    person = _person_query(
        ds,
        lambda p: {
            "id_number": p.id_number,
            "name": p.name,
            "birth_date": p.birth_date,
            "status": p.status,
            "hukou_region": p.hukou_region,
            "criminal_records": [r.model_dump() for r in p.criminal_records],
        },
    )
    return _app("police", "POL", latency_ms, [("/persons/lookup", "id_number", person)])


def education_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    def diploma(body: dict) -> tuple[PersonIn | None, dict | None]:
        found = ds.diplomas.get(body["diploma_no"])
        return (None, None) if found is None else (found[0], _held(*found))

    diplomas_of = _person_query(
        ds,
        lambda p: {
            "holder_id_number": p.id_number,
            "diplomas": [_held(p, d) for d in p.diplomas],
        },
    )
    return _app(
        "education",
        "CHSI",
        latency_ms,
        [
            ("/diplomas/lookup", "diploma_no", diploma),
            ("/diplomas/by-holder", "id_number", diplomas_of),
        ],
    )


def credit_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    def person(body: dict) -> tuple[PersonIn | None, dict | None]:
        # The credit lists answer for anyone: a person they do not list is in good standing.
        key = body["id_number"].upper()
        p = ds.persons.get(key)
        credit = (
            p.credit.model_dump()
            if p
            else {"dishonest_debtor": False, "severe_dishonesty": False, "fraud_bars": []}
        )
        return p, {"id_number": key, **credit}

    def employer(body: dict) -> tuple[PersonIn | None, dict | None]:
        e = ds.employers.get(body["uscc"].upper())
        return None, (e.model_dump() if e else None)

    return _app(
        "credit",
        "CRD",
        latency_ms,
        [("/persons/lookup", "id_number", person), ("/employers/lookup", "uscc", employer)],
    )


def overseas_credentials_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    by_no = {
        c.certification_no: (p, c) for p in ds.persons.values() for c in p.overseas_certifications
    }

    def certification(body: dict) -> tuple[PersonIn | None, dict | None]:
        found = by_no.get(body["certification_no"])
        return (None, None) if found is None else (found[0], _held(*found))

    certifications_of = _person_query(
        ds,
        lambda p: {
            "holder_id_number": p.id_number,
            "certifications": [_held(p, c) for c in p.overseas_certifications],
        },
    )
    return _app(
        "overseas_credentials",
        "CSCSE",
        latency_ms,
        [
            ("/certifications/lookup", "certification_no", certification),
            ("/certifications/by-holder", "id_number", certifications_of),
        ],
    )


def social_security_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    history = _person_query(
        ds,
        lambda p: {
            "id_number": p.id_number,
            "periods": [
                {
                    "employer_uscc": s.employer_uscc,
                    "region": s.region,
                    "from_month": s.from_,
                    "to_month": s.to,
                }
                for s in p.social_security
            ],
        },
    )
    return _app(
        "social_security", "SSC", latency_ms, [("/contributions/lookup", "id_number", history)]
    )


def hrss_app(ds: Dataset, latency_ms: float = 0) -> Starlette:
    by_no = {t.title_certificate_no: (p, t) for p in ds.persons.values() for t in p.titles}

    def title(body: dict) -> tuple[PersonIn | None, dict | None]:
        found = by_no.get(body["title_certificate_no"])
        return (None, None) if found is None else (found[0], _held(*found))

    def postdoc(body: dict) -> tuple[PersonIn | None, dict | None]:
        # A person with no station record is "no record" here, but still subject to faults.
        p = ds.persons.get(body["id_number"].upper())
        if p is None or not p.postdoc:
            return p, None
        return p, {"id_number": p.id_number, "records": [r.model_dump() for r in p.postdoc]}

    return _app(
        "hrss",
        "HRSS",
        latency_ms,
        [
            ("/titles/lookup", "title_certificate_no", title),
            ("/postdocs/lookup", "id_number", postdoc),
        ],
    )


MOCK_APPS = {
    "police": police_app,
    "education": education_app,
    "overseas_credentials": overseas_credentials_app,
    "social_security": social_security_app,
    "credit": credit_app,
    "hrss": hrss_app,
}


def registry_apps(ds: Dataset, latency_ms: dict[str, float] | None = None) -> dict[str, Starlette]:
    latency_ms = latency_ms or {}
    return {name: make(ds, latency_ms.get(name, 0)) for name, make in MOCK_APPS.items()}


def server_app(ds: Dataset, latency_ms: dict[str, float] | None = None) -> Starlette:
    """All mock registries in one app, each under ``/{registry}``."""
    apps = registry_apps(ds, latency_ms)
    return Starlette(routes=[Mount(f"/{name}", app=app) for name, app in apps.items()])

"""Mock registries: apps that answer like the real ones, from a dataset.

Each registry is its own ASGI app, so in-process wiring can give each HTTP client its own
transport exactly as if the registries were separate servers; ``serve`` answers them all under
``/{registry}/`` for ``miaopi mock serve``. Both answer through the same ``Endpoint``.
Per-person ``faults`` make a registry misbehave for that person: ``timeout`` never answers in
time, ``error`` answers 500, ``malformed`` answers something that is not the agreed format.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from miaopi.adapters.mock.dataset import Dataset, PersonIn

# Long enough to outlast any client deadline, short enough not to pile up on a server.
_HANG_S = 30.0
_counter = itertools.count(1)


def _reference(code: str) -> str:
    return f"{code}-{datetime.now(UTC):%Y%m%d}-{next(_counter):08d}"


Handler = Callable[[dict], tuple[PersonIn | None, dict | None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One registry query, whatever serves it: the request body in, status and body out."""

    registry: str
    code: str
    key: str
    find: Handler
    latency_ms: float

    async def answer(self, raw: bytes) -> tuple[int, bytes]:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _json({"error": "body must be JSON"})
        if not isinstance(body, dict) or not isinstance(body.get(self.key), str):
            return 400, _json({"error": f"{self.key} is required"})
        person, record = self.find(body)
        fault = person.faults.get(self.registry) if person else None  # type: ignore[call-overload]
        if fault == "timeout":
            await asyncio.sleep(_HANG_S)
        elif fault == "error":
            return 500, _json({"error": "internal error"})
        elif fault == "malformed":
            return 200, b'{"reference": "' + self.code.encode() + b'", "record": {"na'
        if record is None:
            return 404, _json({"reference": _reference(self.code)})
        return 200, _json({"reference": _reference(self.code), "record": record})


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, default=str).encode()


def _asgi_endpoint(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        status, content = await endpoint.answer(await request.body())
        return Response(content, status, media_type="application/json")

    return serve


def _app(
    registry: str, code: str, latency_ms: float, routes: list[tuple[str, str, Handler]]
) -> Starlette:
    """One registry: a ``POST {path}`` endpoint per (path, key field, lookup)."""
    endpoints = {
        path: Endpoint(registry, code, key, find, latency_ms) for path, key, find in routes
    }
    app = Starlette(
        routes=[
            Route(path, _asgi_endpoint(endpoint), methods=["POST"])
            for path, endpoint in endpoints.items()
        ]
    )
    app.state.endpoints = endpoints
    return app


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


def server_endpoints(
    ds: Dataset, latency_ms: dict[str, float] | None = None
) -> dict[str, Endpoint]:
    """Every mock registry's endpoints, each under ``/{registry}``: what ``serve`` answers."""
    return {
        f"/{name}{path}": endpoint
        for name, app in registry_apps(ds, latency_ms).items()
        for path, endpoint in app.state.endpoints.items()
    }


async def serve(
    ds: Dataset,
    host: str,
    port: int,
    latency_ms: dict[str, float] | None = None,
    started: Callable[[int], None] | None = None,
) -> None:
    """Serve every mock registry over HTTP until cancelled.

    aiohttp's low-level server, not the ASGI apps under uvicorn: the benchmark runs the mocks
    on the service's own machine, and this answers a lookup for about a quarter of the CPU.
    """
    from aiohttp import web

    endpoints = server_endpoints(ds, latency_ms)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        endpoint = endpoints.get(request.path)
        if endpoint is None:
            return web.json_response({"error": "no such registry query"}, status=404)
        if request.method != "POST":
            return web.json_response(
                {"error": "method not allowed"}, status=405, headers={"Allow": "POST"}
            )
        status, content = await endpoint.answer(await request.read())
        return web.Response(body=content, status=status, content_type="application/json")

    # A client that gave up on a hung lookup ends its handler; stopping does not wait for them.
    server = web.Server(handle, handler_cancellation=True)
    runner = web.ServerRunner(server, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        if started is not None:
            started(runner.addresses[0][1])
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

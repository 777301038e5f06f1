"""Schemathesis against the checked-in openapi.yaml: every operation, authenticated.

Generated requests, valid and not, go to the app in-process; every answer must be something
other than a server error and must conform to the document (status codes, content types,
bodies, headers). The app runs on one event loop in a thread of its own for the whole module:
durable-rules must always be called from the same thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, EMPLOYER, REPO, RULES, Clock

# Refusals a document cannot express, each allowed only where it happens (ST202): the check
# characters of an ID number and a USCC (GB 11643, GB 32100), the claims a business type needs,
# an Idempotency-Key used before with another body, a cursor the service did not issue, a
# revocation without its reason, a review decision that does not resolve its case's open
# criteria.
REFUSED_THOUGH_WELL_FORMED = {
    "POST /v1/applications": ["422"],
    "POST /v1/evaluations": ["422"],
    "GET /v1/applications": ["422"],
    "GET /v1/audit/tasks": ["422"],
    "POST /v1/audit/tasks/{task_id}/findings": ["422"],
    "GET /v1/reviews": ["422"],
    "POST /v1/reviews/{review_id}/decision": ["422"],  # what each criterion needs resolved
    "POST /v1/webhook-endpoints": ["422"],  # a URL that is not public https
    "GET /v1/events": ["422"],  # a cursor the service did not issue
    "POST /v1/application-batches": ["422"],  # items checked one by one, as applications
    "POST /v1/certificates/verify": ["422"],  # an ID number's check digit
    "GET /v1/stats": ["422"],  # a period that ends before it starts, or is over a year
    "GET /v1/public/notices": ["422"],  # a period that ends before it starts
    # A reason is counted once the spaces around it are gone.
    "POST /v1/public/notices/{notice_id}/objections": ["422"],
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
# A body the schema refuses may also be too large to read (413, documented on every POST).
NEGATIVE = '[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "403", "404", ' \
    '"405", "406", "409", "413", "415", "422", "428", "429", "5xx"]\n'
CONFIG = SchemathesisConfig.from_str(
    NEGATIVE + "\n".join(
        f'[[operations]]\ninclude-name = "{name}"\n'
        f"checks.positive_data_acceptance.expected-statuses = {json.dumps(ACCEPTED + extra)}\n"
        for name, extra in REFUSED_THOUGH_WELL_FORMED.items()
    )
)
schema = schemathesis.openapi.from_path(REPO / "openapi.yaml", config=CONFIG)

# No 5xx; status, content type, headers and body as documented; schema-violating requests
# refused. Left out: "positive data acceptance", because check digits (GB 11643, GB 32100) and
# registry-issued numbers are beyond what a JSON Schema can say, so a schema-valid ID number
# with a wrong check digit is rightly a 422; and the authentication checks, which resend
# requests themselves: tests/e2e/test_authorization.py covers every operation and role.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,  # ST202: a request the document calls valid is not refused
    allow_header_conformance,  # ST205: Allow lists exactly the documented methods
    missing_required_header,
    unsupported_method,
    # Not here: ignored_auth sends requests of its own, past this test's in-process
    # transport (to the network); the stateful checks (use_after_free, ...) need a stateful run.
]

# Who calls each operation: a caller allowed to, so requests get past authorization.
CALLER = {
    ("POST", "/v1/applications"): "channel",
    ("POST", "/v1/evaluations"): "channel",
    ("POST", "/v1/audit/tasks/{task_id}/findings"): "auditor",
    ("POST", "/v1/webhook-endpoints"): "employer",
}


async def _public(host: str, port: int) -> list[str]:
    """Every name resolves to a public documentation address: no DNS query leaves the test."""
    return ["93.184.216.34"]


class Service:
    def __init__(self, portal: anyio.from_thread.BlockingPortal, tmp: Path) -> None:
        self.portal = portal
        self.container, self.client, self.keys = portal.call(self._start, tmp)

    async def _start(self, tmp: Path) -> tuple[Container, httpx.AsyncClient, dict[str, str]]:
        container = bootstrap(
            Settings(
                database_url=f"sqlite:///{tmp}/fuzz.db",
                rules_dir=RULES,
                data_key=DATA_KEY,
                rate_limit_per_minute=0,  # thousands of requests from one client, on purpose
                _env_file=None,  # type: ignore[call-arg]
            ),
            clock=Clock(),
            resolver=_public,
        )
        keys = {}
        for role, extra in (
            ("employer", {"uscc": EMPLOYER}),
            ("channel", {}),
            ("auditor", {"district": "440304"}),
            ("admin", {}),
        ):
            keys[role] = create_client(container.database.engine, role, f"fuzz {role}", **extra)[1]
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(container)), base_url="http://miaopi.test"
        )
        return container, client, keys

    def send(self, case: Any) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url="http://miaopi.test")
        headers = dict(kwargs.get("headers") or {})
        components = getattr(case.meta, "components", {}) or {}
        header = next((c for loc, c in components.items() if loc.value == "header"), None)
        if header is None or header.mode.name != "NEGATIVE":
            # Unless the case's headers are meant to be wrong (a missing or malformed key, say),
            # it is sent with a real key of a role allowed to call the operation.
            role = CALLER.get((case.method.upper(), case.path), "admin")
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {self.keys[role]}"

        # A malformed header may hold bytes outside ASCII, which httpx refuses to encode from
        # str; sent as bytes, the way any client could put them on the wire.
        headers = {k: v if v.isascii() else v.encode() for k, v in headers.items()}

        async def call() -> httpx.Response:
            return await self.client.request(
                kwargs["method"], kwargs["url"], headers=headers, params=kwargs.get("params"),
                content=_body(kwargs),
            )  # fmt: skip

        return self.portal.call(call)

    def close(self) -> None:
        async def stop() -> None:
            await self.client.aclose()
            await self.container.aclose()

        self.portal.call(stop)


def _body(kwargs: dict[str, Any]) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    return data.encode() if isinstance(data, str) else data


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with anyio.from_thread.start_blocking_portal() as portal:
        running = Service(portal, tmp_path_factory.mktemp("fuzz"))
        yield running
        running.close()


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_within_the_spec(case: Any, service: Service) -> None:
    response = service.send(case)
    case.validate_response(response, checks=CHECKS)

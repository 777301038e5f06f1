"""What an operator sees: metrics, request ids carried to the registries, JSON log lines."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable

import httpx
import pytest

from miaopi.adapters.mock.dataset import Dataset
from miaopi.adapters.mock.registries import MOCK_APPS
from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.evidence.ports import REGISTRY_NAMES
from miaopi.settings import Settings
from miaopi.telemetry.logs import JsonFormatter
from tests.conftest import ON_POSTGRES, Clock, application, graduate

pytestmark = pytest.mark.anyio
Keys = Callable[..., dict[str, str]]


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus exposition (0 when it is not there yet)."""
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0] if "{" in line else ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_decisions_registries_and_rules(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    before = (await api.get("/metrics")).text
    employer = make_key()
    made = await api.post("/v1/applications", json=application(), headers=employer)
    # Another person: the first is now approved, and a second approval would be referred.
    dry = await api.post(
        "/v1/evaluations", json=application(**graduate(0)), headers=employer
    )
    assert (made.status_code, dry.status_code) == (201, 200)
    response = await api.get("/metrics")
    after = response.text

    assert response.headers["content-type"].startswith("text/plain")

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("miaopi_decisions_total", business_type="graduate", outcome="approved",
                purpose="case") == 1  # fmt: skip
    assert grew("miaopi_decisions_total", business_type="graduate", outcome="approved",
                purpose="dry_run") == 1  # fmt: skip
    assert grew("miaopi_decision_seconds_count", business_type="graduate") == 2
    assert grew("miaopi_rule_evaluation_seconds_count", business_type="graduate") == 2
    assert grew("miaopi_rule_evaluation_cpu_seconds_count", business_type="graduate") == 2
    # The evaluating thread's CPU is part of the wall-clock time (two clocks: a little slack).
    cpu = grew("miaopi_rule_evaluation_cpu_seconds_sum", business_type="graduate")
    assert 0 < cpu <= grew("miaopi_rule_evaluation_seconds_sum", business_type="graduate") + 0.001
    assert grew("miaopi_registry_query_seconds_count", registry="police", query="person") == 2
    assert grew("miaopi_registry_queries_total", registry="education", status="ok") == 2
    assert grew("miaopi_http_requests_total", method="POST", route="/v1/applications",
                status="201") == 1  # fmt: skip
    assert "miaopi_registry_breaker_state{" in after
    assert sample(after, "miaopi_registry_breaker_state", registry="police") == 0  # closed
    # Each request's database work (the case, the dry run's access log and more), waits or not.
    assert grew("miaopi_database_wait_seconds_count") >= 2
    assert "420102200203151232" not in after


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's write-ahead log")
async def test_sqlite_checkpoints_are_measured(api: httpx.AsyncClient, make_key: Keys) -> None:
    """The thread that checkpoints while the service serves (records/wal.py) shows its rounds
    and the log's length, so that a log that keeps growing can be seen and alerted on."""
    before = (await api.get("/metrics")).text
    made = await api.post("/v1/applications", json=application(), headers=make_key())
    assert made.status_code == 201
    name = "miaopi_sqlite_checkpoint_seconds_count"
    after = before
    for _ in range(100):  # a round every 0.2 s
        await asyncio.sleep(0.05)
        after = (await api.get("/metrics")).text
        if sample(after, name, holding_slot="false") > sample(before, name, holding_slot="false"):
            break
    assert sample(after, name, holding_slot="false") > sample(before, name, holding_slot="false")
    # The API key's and the case's pages are in the log; no writer has started it again since.
    assert sample(after, "miaopi_sqlite_wal_pages") > 0


async def test_methods_outside_http_s_own_are_counted_as_other(api: httpx.AsyncClient) -> None:
    # Any token is a method to HTTP/1.1; as a label each would be a time series of its own,
    # so a client could grow /metrics (and every worker's metric files) without end.
    counted = {"method": "other", "route": "/v1/applications", "status": "405"}
    before = sample((await api.get("/metrics")).text, "miaopi_http_requests_total", **counted)
    for method in ("BREW", "X1", "X2"):
        assert (await api.request(method, "/v1/applications")).status_code == 405
    after = (await api.get("/metrics")).text
    assert sample(after, "miaopi_http_requests_total", **counted) - before == 3
    assert 'method="BREW"' not in after
    assert 'method="X1"' not in after


class Recording(httpx.AsyncBaseTransport):
    """The mock registry over ASGI, remembering the request ids it was sent."""

    def __init__(self, name: str, seen: list[str]) -> None:
        self.inner = httpx.ASGITransport(app=MOCK_APPS[name](Dataset.bundled(), 0))
        self.seen = seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers.get("x-request-id", ""))
        return await self.inner.handle_async_request(request)


async def test_the_request_id_reaches_every_registry_and_the_log(
    settings: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    container = bootstrap(
        settings, clock=clock, transports={n: Recording(n, seen) for n in REGISTRY_NAMES}
    )
    from miaopi.records.clients import create_client

    _, key = create_client(container.database.engine, "employer", "e", uscc="91440305MA5F1Q2RXK")
    headers = {"Authorization": f"Bearer {key}"}
    caplog.set_level(logging.INFO, logger="miaopi")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(container)), base_url="http://t"
    ) as api:
        given = await api.post(
            "/v1/applications", json=application(), headers={**headers, "X-Request-ID": "hr-42.a"}
        )
        made = await api.post(
            "/v1/evaluations", json=application(), headers={**headers, "X-Request-ID": "a\x7fb c"}
        )
    await container.aclose()

    assert given.headers["x-request-id"] == "hr-42.a"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])  # unsafe id replaced
    assert seen.count("hr-42.a") >= 4  # police, education, credit (person, employer)
    assert set(seen) == {"hr-42.a", made.headers["x-request-id"]}
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "miaopi.http"
    ]
    assert {"request_id": "hr-42.a", "route": "/v1/applications", "status": 201,
            "method": "POST"}.items() <= lines[0].items()  # fmt: skip
    assert lines[1]["request_id"] == made.headers["x-request-id"]
    assert lines[0]["duration_ms"] > 0

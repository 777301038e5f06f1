"""Telling the submitter (policy §10): events recorded with their change, a feed to poll, and
webhooks signed as Standard Webhooks says, verified by a receiver with that package.

The receiver is a real HTTP server on loopback. Host names resolve through a table the test
holds, so the address guard is tested on the addresses it is given: no test connects anywhere
but 127.0.0.1 (a tripwire backend fails any other connection before it is made).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.notify.transport import GuardedTransport
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import EMPLOYER, Clock, application, graduate

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook receiver: records what arrives; fails, or sleeps, when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.failures, self.sleep_s = 0, 0.0
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append(({k.lower(): v for k, v in request.headers.items()}, body))
        self.arrived.set()
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if self.failures:
            self.failures -= 1
            return web.Response(status=500)
        return web.Response(status=204)


class Names:
    """The DNS as the test says it is."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {}

    async def __call__(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return list(self.table.get(host, []))


class Tripwire(httpcore.AsyncNetworkBackend):
    """Connects to loopback only; anything else fails the test before a packet leaves."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, **kw: Any) -> httpcore.AsyncNetworkStream:
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to connect to {host}"
        return await self.inner.connect_tcp(host, port, **kw)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def container(settings: Settings, clock: Clock, names: Names) -> Iterator[Container]:
    made = bootstrap(settings, clock=clock, resolver=names)
    _tripwired(made, names)
    yield made
    made.database.dispose()


def _tripwired(container: Container, names: Names) -> None:
    """The container's webhooks sent through the tripwire, cut at 1 s."""
    policy = container.webhooks.policy
    client = httpx.AsyncClient(
        transport=GuardedTransport(policy, names, inner=Tripwire()),
        timeout=1.0,
        follow_redirects=False,
    )
    container.http_clients.append(client)
    container.deliverer.client = client


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    container.database.open_on_this_loop()
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://miaopi.test") as client:
        yield client
    await container.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield hooks, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


def _key(container: Container, role: str = "employer", **kw: Any) -> dict[str, str]:
    uscc = EMPLOYER if role == "employer" else None
    _, key = create_client(container.database.engine, role, f"{role} hooks", uscc=uscc, **kw)
    return {"Authorization": f"Bearer {key}"}


async def _register(
    api: httpx.AsyncClient, auth: dict[str, str], url: str, **extra: Any
) -> dict[str, Any]:
    answer = await api.post("/v1/webhook-endpoints", json={"url": url, **extra}, headers=auth)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_a_decision_is_signed_delivered_and_in_the_feed(
    api: httpx.AsyncClient, container: Container, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    endpoint = await _register(api, hr, url)
    assert endpoint["secret"].startswith("whsec_")
    listed = (await api.get("/v1/webhook-endpoints", headers=hr)).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]  # shown once

    case = (await api.post("/v1/applications", json=application(**graduate(0)), headers=hr)).json()
    assert case["status"] == "approved"
    assert hooks.calls == []  # nothing is sent on the decision's request path
    assert await container.deliverer.run_once() == 1

    [(headers, body)] = hooks.calls
    event = Webhook(endpoint["secret"]).verify(body, headers)
    assert headers["webhook-id"] == event["event_id"]
    assert (event["type"], event["case_id"]) == ("case.decided", case["case_id"])
    assert event["data"]["status"] == "approved"
    assert event["data"]["name"] == "李****"  # the masked name, and nothing more of them
    assert graduate(0)["id_number"].encode() not in body
    assert "李明000".encode() not in body

    feed = (await api.get("/v1/events", headers=hr)).json()
    assert [e["event_id"] for e in feed["items"]] == [event["event_id"]]
    polled = (await api.get("/v1/events", params={"after": feed["next_cursor"]}, headers=hr))
    assert polled.json() == {"items": [], "next_cursor": feed["next_cursor"]}
    other = _key(container, "channel")
    assert (await api.get("/v1/events", headers=other)).json()["items"] == []

    attempts = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=hr))
    [attempt] = attempts.json()["items"]
    assert (attempt["status_code"], attempt["delivery_status"]) == (204, "succeeded")
    assert await container.deliverer.run_once() == 0  # delivered once


async def test_a_failing_receiver_is_retried_until_it_takes_the_event(
    api: httpx.AsyncClient, container: Container, clock: Clock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    endpoint = await _register(api, hr, url)
    hooks.failures = 3
    await api.post("/v1/applications", json=application(**graduate(1)), headers=hr)
    assert await container.deliverer.run_once() == 1
    for wait in ({"seconds": 7}, {"minutes": 7}, {"minutes": 37}):  # past each delay, jittered
        assert await container.deliverer.run_once() == 0  # not due yet
        clock.advance(**wait)
        assert await container.deliverer.run_once() == 1
    assert len(hooks.calls) == 4
    assert len({h["webhook-id"] for h, _ in hooks.calls}) == 1  # one event, four attempts
    assert len({b for _, b in hooks.calls}) == 1  # byte for byte the same body
    for headers, body in hooks.calls:
        Webhook(endpoint["secret"]).verify(body, headers)
    listed = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=hr))
    codes = [a["status_code"] for a in reversed(listed.json()["items"])]
    assert codes == [500, 500, 500, 204]


async def test_an_endpoint_failing_for_a_day_is_disabled_with_its_reason(
    api: httpx.AsyncClient, container: Container, clock: Clock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    endpoint = await _register(api, hr, url)
    hooks.failures = 100
    await api.post("/v1/applications", json=application(**graduate(2)), headers=hr)
    attempts = 0
    for _ in range(12):
        attempts += await container.deliverer.run_once()
        clock.advance(hours=12)
    assert attempts == 8  # the first and seven retries, over more than a day
    [seen] = (await api.get("/v1/webhook-endpoints", headers=hr)).json()["items"]
    assert seen["active"] is False
    assert "HTTP 500" in seen["disabled_reason"]
    # A disabled endpoint gets no new deliveries.
    await api.post("/v1/applications", json=application(**graduate(3)), headers=hr)
    assert await container.deliverer.run_once() == 0
    assert endpoint["id"] == seen["id"]


async def test_a_receiver_that_hangs_is_cut_at_the_timeout(
    api: httpx.AsyncClient, container: Container, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    endpoint = await _register(api, hr, url)
    hooks.sleep_s = 5
    await api.post("/v1/applications", json=application(**graduate(4)), headers=hr)
    started = asyncio.get_running_loop().time()
    await container.deliverer.run_once()
    assert asyncio.get_running_loop().time() - started < 3  # the timeout is 1 s
    listed = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=hr))
    [attempt] = listed.json()["items"]
    assert (attempt["error"], attempt["delivery_status"]) == ("timed out", "pending")


async def test_an_event_committed_before_a_restart_is_delivered_after_it(
    api: httpx.AsyncClient, container: Container, clock: Clock, settings: Settings,
    names: Names, receiver: tuple[Receiver, str],
) -> None:  # fmt: skip
    hooks, url = receiver
    hr = _key(container)
    endpoint = await _register(api, hr, url)
    await api.post("/v1/applications", json=application(**graduate(5)), headers=hr)
    # The process goes away before its worker ran: the event is in the database only.
    restarted = bootstrap(settings, clock=clock, resolver=names)
    _tripwired(restarted, names)
    try:
        assert await restarted.deliverer.run_once() == 1
    finally:
        await restarted.aclose()
    [(headers, body)] = hooks.calls
    assert Webhook(endpoint["secret"]).verify(body, headers)["type"] == "case.decided"


async def test_a_worker_stopped_mid_send_gives_the_delivery_back(
    api: httpx.AsyncClient, container: Container, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    await _register(api, hr, url)
    await api.post("/v1/applications", json=application(**graduate(6)), headers=hr)
    hooks.sleep_s = 0.5
    sending = asyncio.create_task(container.deliverer.run_once())
    await hooks.arrived.wait()
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    hooks.sleep_s = 0
    assert await container.deliverer.run_once() == 1  # due again at once, not after a lease
    assert len(hooks.calls) == 2


async def test_workers_running_at_once_send_each_attempt_once(
    api: httpx.AsyncClient, container: Container, clock: Clock, settings: Settings,
    names: Names, receiver: tuple[Receiver, str],
) -> None:  # fmt: skip
    hooks, url = receiver
    hr = _key(container)
    await _register(api, hr, url)
    for n in range(7, 17):
        await api.post("/v1/applications", json=application(**graduate(n)), headers=hr)
    other = bootstrap(settings, clock=clock, resolver=names)
    _tripwired(other, names)
    other.database.open_on_this_loop()
    try:
        sent = await asyncio.gather(
            container.deliverer.run_once(), other.deliverer.run_once(),
            container.deliverer.run_once(),
        )  # fmt: skip
    finally:
        await other.aclose()
    assert sum(sent) == 10
    assert len(hooks.calls) == 10
    assert len({h["webhook-id"] for h, _ in hooks.calls}) == 10


async def test_an_event_is_sent_again_on_request(
    api: httpx.AsyncClient, container: Container, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hr = _key(container)
    await _register(api, hr, url)
    await api.post("/v1/applications", json=application(**graduate(17)), headers=hr)
    await container.deliverer.run_once()
    [event] = (await api.get("/v1/events", headers=hr)).json()["items"]
    again = await api.post(f"/v1/events/{event['event_id']}/redeliver", headers=hr)
    assert again.status_code == 202
    assert again.json() == {"deliveries": 1}
    stranger = _key(container, "channel")
    refused = await api.post(f"/v1/events/{event['event_id']}/redeliver", headers=stranger)
    assert refused.status_code == 404
    assert await container.deliverer.run_once() == 1
    assert [h["webhook-id"] for h, _ in hooks.calls] == [event["event_id"]] * 2


FORBIDDEN = [
    # Loopback is allowed in development (these tests' environment): a unit test refuses it.
    "10.1.2.3", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "fc00::1",  # noqa: S104 - an address refused, not bound "fe80::1", "::ffff:10.0.0.1", "224.0.0.1",
]  # fmt: skip


@pytest.mark.parametrize("address", FORBIDDEN)
async def test_an_endpoint_resolving_to_a_private_address_is_refused(
    api: httpx.AsyncClient, container: Container, names: Names, address: str
) -> None:
    names.table["hooks.example.com"] = ["93.184.216.34", address]
    refused = await api.post(
        "/v1/webhook-endpoints", json={"url": "https://hooks.example.com/in"},
        headers=_key(container),
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "url"]


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/in", "ftp://hooks.example.com/in",
     "https://user:pw@hooks.example.com/", "https://nowhere.example.com/in",
     "https://hooks.example.com:99999/"],
)  # fmt: skip
async def test_an_endpoint_url_that_is_not_public_https_is_refused(
    api: httpx.AsyncClient, container: Container, names: Names, url: str
) -> None:
    names.table["hooks.example.com"] = ["93.184.216.34"]
    refused = await api.post("/v1/webhook-endpoints", json={"url": url}, headers=_key(container))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "url"]


async def test_a_name_that_resolves_elsewhere_after_registration_reaches_nothing(
    api: httpx.AsyncClient, container: Container, names: Names
) -> None:
    names.table["hooks.example.com"] = ["93.184.216.34"]
    hr = _key(container)
    endpoint = await _register(api, hr, "https://hooks.example.com/in")
    names.table["hooks.example.com"] = ["169.254.169.254"]  # rebinding
    await api.post("/v1/applications", json=application(**graduate(18)), headers=hr)
    assert await container.deliverer.run_once() == 1
    listed = (await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=hr))
    [attempt] = listed.json()["items"]
    assert attempt["status_code"] is None
    assert "169.254.169.254" in attempt["error"]


async def test_a_host_the_operator_allows_may_be_private(
    settings: Settings, clock: Clock, names: Names
) -> None:
    allowed = settings.model_copy(update={"webhook_allowed_hosts": "hr.internal"})
    made = bootstrap(allowed, clock=clock, resolver=names)
    try:
        names.table["hr.internal"] = ["10.20.30.40"]
        client = create_client(made.database.engine, "employer", "hr", uscc=EMPLOYER)[0]
        endpoint_id, _ = await made.webhooks.register(client, "https://hr.internal/hook", None)
        assert endpoint_id
    finally:
        await made.aclose()

"""The production registry client (bootstrap's, over aiohttp) against a real HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from miaopi.adapters.http.base import RegistryHttpClient
from miaopi.adapters.http.registries import HttpPoliceRegistry
from miaopi.adapters.mock.dataset import Dataset
from miaopi.bootstrap import registry_client
from miaopi.settings import Settings
from tests.conftest import free_port
from tests.integration.test_http_adapters import PERSON

pytestmark = pytest.mark.anyio
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Serve one handler at /police/persons/lookup on loopback; gives the registry's URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/police/persons/lookup", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        # By name: a client's cookie jar may refuse cookies from bare IP addresses.
        return f"http://localhost:{port}/police"

    yield start
    for runner in runners:
        await runner.cleanup()


def police(url: str) -> tuple[HttpPoliceRegistry, Callable[[], Awaitable[None]]]:
    settings = Settings(registry_police_url=url, _env_file=None)  # type: ignore[call-arg]
    http = registry_client("police", settings, Dataset.bundled)
    return HttpPoliceRegistry(RegistryHttpClient("police", http, 2.0)), http.aclose


async def test_a_cookie_a_registry_sets_is_never_sent_back_over_the_wire(serve) -> None:  # type: ignore[no-untyped-def]
    sent: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        sent.append(request.headers.get("Cookie"))
        answer = web.json_response({"reference": "POL-1", "record": PERSON})
        answer.set_cookie("session", "about-li-ming", path="/")
        return answer

    registry, close = police(await serve(handler))
    try:
        first = await registry.person("420102200203151232")
        second = await registry.person("110101199003074477")
    finally:
        await close()
    assert (first.status, second.status) == ("ok", "ok")
    assert sent == [None, None]


async def test_the_lookup_arrives_as_json_with_its_length_and_request_id(serve) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.json_response({"reference": "POL-2"}, status=404)

    url = await serve(handler)
    registry, close = police(url)
    try:
        evidence = await registry.person("420102200203151232")
    finally:
        await close()
    assert (evidence.status, evidence.reference) == ("no_record", "POL-2")
    [(headers, body)] = seen
    assert json.loads(body) == {"id_number": "420102200203151232"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert headers["Host"] == url.removeprefix("http://").removesuffix("/police")
    assert "Transfer-Encoding" not in headers
    assert headers["X-Request-ID"]


async def test_a_compressed_answer_is_read_as_the_registry_meant_it(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        payload = json.dumps({"reference": "POL-3", "record": PERSON}).encode()
        return web.Response(
            body=gzip.compress(payload),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    registry, close = police(await serve(handler))
    try:
        evidence = await registry.person("420102200203151232")
    finally:
        await close()
    assert (evidence.status, evidence.reference) == ("ok", "POL-3")
    assert (evidence.record or {}).get("name") == "李明"


async def test_a_registry_that_refuses_the_connection_is_unavailable_not_an_error() -> None:
    registry, close = police(f"http://127.0.0.1:{free_port()}/police")
    try:
        evidence = await registry.person("420102200203151232")
    finally:
        await close()
    assert evidence.status == "unavailable"
    assert evidence.detail == "transport error: ConnectError"
    assert evidence.attempts == 2  # retried once: refusing says nothing about the applicant


async def garbling(answer: bytes) -> tuple[str, asyncio.Server]:
    """A server on loopback that answers every request with ``answer``, HTTP or not."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/police", server


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"garbage\r\n\r\n", id="bad status line"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\n{}", id="bad header"
        ),
    ],
)
async def test_an_answer_that_is_not_http_is_unavailable_evidence_not_an_exception(
    answer: bytes,
) -> None:
    # A registry, or a proxy before it, that garbles its answer says nothing about the
    # applicant: the lookup is tried again and then counts as unavailable, like a dropped line.
    url, server = await garbling(answer)
    registry, close = police(url)
    try:
        evidence = await registry.person("420102200203151232")
    finally:
        await close()
        server.close()
    assert evidence.status == "unavailable"
    assert evidence.detail == "transport error: RemoteProtocolError"
    assert evidence.attempts == 2


async def test_through_httpx_own_api_the_transport_decodes_answers_and_raises_httpx_errors(
    serve,  # type: ignore[no-untyped-def]
) -> None:
    # Lookups take the transport's shorter way (``post``); anything else that holds the client
    # goes through httpx's request and response, and must see what an httpx transport gives.
    async def handler(request: web.Request) -> web.Response:
        payload = json.dumps({"reference": "POL-4", "record": PERSON}).encode()
        return web.Response(
            body=gzip.compress(payload),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    settings = Settings(registry_police_url=await serve(handler), _env_file=None)  # type: ignore[call-arg]
    garbled, server = await garbling(b"garbage\r\n\r\n")
    async with registry_client("police", settings, Dataset.bundled) as http:
        answer = await http.post("persons/lookup", json={"id_number": "420102200203151232"})
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{garbled}/persons/lookup", json={})
    server.close()
    assert answer.status_code == 200
    assert answer.json()["record"]["name"] == "李明"
    assert answer.headers["Content-Encoding"] == "gzip"


def _huge(kind: str) -> web.StreamResponse:
    payload = json.dumps({"reference": "POL-5", "record": {**PERSON, "name": "李" * 800_000}})
    if kind == "gzip":  # about 7 kB on the wire, 2.4 MB decoded
        return web.Response(
            body=gzip.compress(payload.encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    return web.Response(text=payload, content_type="application/json")


async def _huge_chunked(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Type": "application/json"})
    answer.enable_chunked_encoding()
    await answer.prepare(request)
    for _ in range(40):  # 40 chunks of 64 kB, no length given
        await answer.write(b" " * 65_536)
    await answer.write_eof()
    return answer


@pytest.mark.parametrize("kind", ["with its length", "chunked", "gzip"])
async def test_an_answer_larger_than_a_mebibyte_is_invalid_and_not_asked_again(
    serve,  # type: ignore[no-untyped-def]
    kind: str,
) -> None:
    asked: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        asked.append(1)
        return await _huge_chunked(request) if kind == "chunked" else _huge(kind)

    registry, close = police(await serve(handler))
    try:
        evidence = await registry.person("420102200203151232")
    finally:
        await close()
    assert evidence.status == "invalid"
    assert evidence.detail == "answer larger than 1024 KiB"
    assert (evidence.attempts, len(asked)) == (1, 1)


@pytest.mark.parametrize("kind", ["with its length", "chunked"])
async def test_through_httpx_own_api_an_answer_larger_than_a_mebibyte_is_not_read_whole(
    serve,  # type: ignore[no-untyped-def]
    kind: str,
) -> None:
    # A caller of the client itself (not a lookup) gets httpx's decoding error, not a process
    # whose memory a registry streaming without end fills.
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _huge_chunked(request) if kind == "chunked" else _huge(kind)

    settings = Settings(registry_police_url=await serve(handler), _env_file=None)  # type: ignore[call-arg]
    async with registry_client("police", settings, Dataset.bundled) as http:
        with pytest.raises(httpx.DecodingError, match="larger than 1024 KiB"):
            await http.post("persons/lookup", json={"id_number": "420102200203151232"})

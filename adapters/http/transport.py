"""The transport registry clients use in production: httpx's API over aiohttp's connection pool.

httpx's own pool (httpcore 1.0.9) rescans every connection per request and collapses under many
requests in flight; ``httpx-aiohttp`` keeps the httpx API on aiohttp's pool. Its transport hands
each answer back as a stream that httpx then reads through three async wrappers; a registry's
answer is a small JSON document that is always read whole, so this one reads it in aiohttp and
hands httpx the bytes (bench/HISTORY.md has what each step saved).

A lookup itself takes a shorter way, ``post``: no httpx request or response is made at all.
They were 44 % of the instructions a lookup cost over aiohttp's own (callgrind, 64 in flight).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import httpx
from aiohttp import hdrs
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions


def _transport_error(exc: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx error for an aiohttp one, so callers handle httpx's errors alone."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        # httpx-aiohttp's table maps a refused connection to ConnectTimeout (the first of two
        # matching entries), so the evidence would say a registry that refused "timed out".
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ClientResponseError):
        # An answer that is not HTTP (a bad status line or header): httpx's own transport
        # calls it a protocol error. httpx-aiohttp passes it through as aiohttp's, which no
        # caller of an httpx client expects to catch.
        return httpx.RemoteProtocolError(str(exc))
    try:
        # The rest by httpx-aiohttp's own table. Asked only once an error is in hand: as a
        # context manager around every lookup it cost 21k instructions of the ~530k a lookup
        # takes (callgrind).
        with map_aiohttp_exceptions():
            raise exc
    except httpx.TransportError as mapped:
        return mapped
    except aiohttp.ClientError:  # not in its table
        pass
    return httpx.TransportError(str(exc))


_UNBOUNDED = aiohttp.ClientTimeout()

# A registry answers a lookup with a small JSON document (a few kB). A broken registry, or a
# proxy before it, that streams without end must not fill the process's memory.
MOST_ANSWER_BYTES = 1 << 20


class AnswerTooLarge(httpx.DecodingError):
    """A lookup's answer, decoded, is larger than ``MOST_ANSWER_BYTES``."""

    def __init__(self) -> None:
        super().__init__(f"answer larger than {MOST_ANSWER_BYTES // 1024} KiB")


async def _bounded_body(answer: aiohttp.ClientResponse, *, decoded: bool = True) -> bytes:
    """The body whole, as aiohttp reads it: ``decoded`` if the request asked aiohttp to decode
    it, else as it came over the wire."""
    length = answer.content_length
    if length is not None and length > MOST_ANSWER_BYTES:
        raise AnswerTooLarge
    if length is not None and not (decoded and hdrs.CONTENT_ENCODING in answer.headers):
        return await answer.read()  # no more than the length just checked
    # Chunked, or compressed (a small body can decode to a large one): counted as it comes.
    body = bytearray()
    async for chunk in answer.content.iter_any():
        body += chunk
        if len(body) > MOST_ANSWER_BYTES:
            raise AnswerTooLarge
    return bytes(body)


class RegistryTransport(AiohttpTransport):
    """``AiohttpTransport`` that reads each answer whole and keeps no cookies."""

    def get_client(self) -> aiohttp.ClientSession:
        # Lookups are stateless (see RegistryClient). aiohttp's own jar would keep a cookie a
        # registry set while answering about one applicant and send it with the next lookup.
        connector = aiohttp.TCPConnector(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            limit=self.limits.max_connections or 0,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    def _session(self) -> aiohttp.ClientSession:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client

    async def post(
        self, url: str, headers: Sequence[tuple[str, str]], content: bytes
    ) -> tuple[int, bytes]:
        """POST and read the answer whole: its status and its body, decoded.

        Errors are httpx's, as from ``handle_async_request``; an answer larger than
        ``MOST_ANSWER_BYTES`` is ``AnswerTooLarge``. Host and Content-Length are aiohttp's to
        set. No time limit of aiohttp's: the caller bounds the whole exchange.
        """
        try:
            async with self._session().post(
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                auto_decompress=True,  # the body handed back is decoded, as the caller reads it
                compress=False,
                timeout=_UNBOUNDED,
            ) as answer:
                return answer.status, await _bounded_body(answer)
        except aiohttp.ClientError as exc:
            raise _transport_error(exc) from exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        headers = request.headers.raw
        try:
            async with self._session().request(
                request.method,
                str(request.url),
                # httpx has already set Host and Content-Length; aiohttp keeps them.
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, by the headers it is given
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            ) as answer:
                # Bounded as it comes over the wire; what httpx decodes from it is for its
                # caller to bound (a lookup does, in ``_exchange``).
                content = await _bounded_body(answer, decoded=False)
        except aiohttp.ClientError as exc:
            raise _transport_error(exc) from exc
        # Left unread: httpx decodes it as its headers say when it is read, and a caller that
        # streams it (``client.stream``) can stop before a compressed answer decodes whole.
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

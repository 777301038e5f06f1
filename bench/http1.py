"""The load generator's HTTP client: HTTP/1.1 over one kept-alive connection per load worker.

The load generator shares the machine with the service, and every millisecond of CPU it spends
is one the service does not get. aiohttp's client cost it about 0.5 ms of CPU per decision
(its request and response objects, timers, cookie and redirect handling, headers as
multidicts); the load needs none of that: a request of fixed headers, and an answer read whole
by its ``Content-Length``, as uvicorn gives it. Anything else (a chunked answer, a broken
connection) is an error of the request, and the connection is opened anew for the next one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class ProtocolError(Exception):
    """An answer this client does not read: not HTTP/1.1, or without a Content-Length."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[bytes, bytes]  # names in lower case
    body: bytes


class Connection:
    """One connection to ``host:port``, opened when first needed and again after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._host_header]
        head += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}\r\n".encode())
        head.append(b"\r\n")
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        try:
            writer.write(b"".join(head) + body)
            answer = await self._read(reader)
        except BaseException:
            self.close()
            raise
        if answer.headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Answer:
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if version != b"HTTP/1.1":
            raise ProtocolError(f"not an HTTP/1.1 answer: {lines[0]!r}")
        headers = {}
        for line in lines[1:-2]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" not in headers:
            raise ProtocolError("an answer without a Content-Length")
        body = await reader.readexactly(int(headers[b"content-length"]))
        return Answer(int(rest[:3]), headers, body)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

"""The HTTP transport webhooks go out on: it connects only to addresses the guard allows.

httpx resolves and connects inside httpcore; its network backend is where the address is known.
``GuardedBackend`` resolves the host itself, checks every address, and connects to an allowed
one by address, while TLS still verifies the certificate for the URL's host name. Redirects are
not followed (the client sending webhooks is made with ``follow_redirects=False``).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from miaopi.notify.address_guard import AddressPolicy, Refused, Resolver


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver,
        scheme: str = "https",
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy, self.resolver, self.scheme = policy, resolver, scheme
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's own signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolver(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:
            why = self.policy.address_allowed(host.lower(), address, self.scheme)
            if why is not None:
                raise Refused(why)
        return await self.inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise Refused("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """Two pools, one per scheme, so that the guard knows whether the request is https."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """``inner`` connects to the vetted address (a test's stand-in; else AnyIO's)."""
        context = ssl.create_default_context()
        self._pools = {
            scheme: _transport(GuardedBackend(policy, resolver, scheme, inner), context)
            for scheme in ("https", "http")
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pools[request.url.scheme].handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


def _transport(backend: GuardedBackend, context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=context, retries=0)
    # httpx takes no network backend of its own; its pool does (httpcore's public argument).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context, max_connections=50, keepalive_expiry=5.0, network_backend=backend
    )
    return transport

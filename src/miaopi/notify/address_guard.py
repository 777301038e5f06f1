"""Where a webhook may be sent: public addresses only (no SSRF into the service's network).

A URL must be https (http only to loopback, and only in development). Its host is resolved,
and every address it resolves to must be global: private, loopback, link-local (cloud metadata
at 169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified addresses are
refused, IPv4-mapped IPv6 included, unless the host is listed in
``MIAOPI_WEBHOOK_ALLOWED_HOSTS``. The check runs at registration and again at each connection,
on the address actually connected to (``transport.GuardedBackend``), so a DNS answer changed
after registration (rebinding) reaches nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """A webhook URL or address that may not be used; the message says why."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressPolicy:
    allowed_hosts: frozenset[str] = frozenset()
    development: bool = False

    def check_url(self, url: str) -> tuple[str, int]:
        """(host, port) of a URL that may be registered, before its host is resolved."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise Refused("the URL must be https://host/…")
        if parts.username or parts.password:
            raise Refused("the URL may not carry a user name or password")
        if parts.fragment:
            raise Refused("the URL may not carry a fragment")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise Refused("the URL's port is not a port") from None
        return parts.hostname.lower(), port

    def address_allowed(self, host: str, address: str, scheme: str) -> str | None:
        """None if ``host`` may be reached at ``address`` over ``scheme``; else why not."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if host in self.allowed_hosts:
            return None
        if ip.is_loopback and self.development:
            return None
        if scheme != "https":
            return "http is allowed only to loopback, in development: use https"
        if not ip.is_global or ip.is_multicast:
            return f"{host} resolves to {ip}, which is not a public address"
        return None


async def vet(url: str, policy: AddressPolicy, resolver: Resolver) -> None:
    """Refuse a URL that may not be registered (see the module)."""
    host, port = policy.check_url(url)
    scheme = urlsplit(url).scheme
    try:
        addresses = await resolver(host, port)
    except OSError:
        raise Refused(f"{host} does not resolve") from None
    if not addresses:
        raise Refused(f"{host} does not resolve")
    for address in addresses:
        why = policy.address_allowed(host, address, scheme)
        if why is not None:
            raise Refused(why)

"""The webhook address guard: public https only, whatever a host name resolves to."""

from __future__ import annotations

import pytest

from miaopi.notify.address_guard import AddressPolicy, Refused, vet

pytestmark = pytest.mark.anyio

PRODUCTION = AddressPolicy()
DEVELOPMENT = AddressPolicy(development=True)


def names(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254",
     "100.64.0.1", "0.0.0.0",  # noqa: S104 - an address refused, not bound
     "fc00::1", "fd12:3456::1", "fe80::1", "::ffff:127.0.0.1",
     "::ffff:169.254.169.254", "224.0.0.251", "198.18.0.1", "240.0.0.1"],
)  # fmt: skip
async def test_every_non_public_address_is_refused_in_production(address: str) -> None:
    with pytest.raises(Refused, match="not a public address"):
        await vet("https://hooks.example.com/in", PRODUCTION, names(address))


async def test_a_public_https_endpoint_is_accepted() -> None:
    await vet("https://hooks.example.com/in", PRODUCTION, names("93.184.216.34", "2606:2800::1"))


async def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(Refused):
        await vet("https://hooks.example.com/in", PRODUCTION, names("93.184.216.34", "10.0.0.1"))


async def test_loopback_over_http_is_for_development_only() -> None:
    await vet("http://127.0.0.1:9000/hook", DEVELOPMENT, names("127.0.0.1"))
    with pytest.raises(Refused):
        await vet("http://127.0.0.1:9000/hook", PRODUCTION, names("127.0.0.1"))
    with pytest.raises(Refused, match="https"):
        await vet("http://hooks.example.com/in", DEVELOPMENT, names("93.184.216.34"))


async def test_a_listed_host_may_be_private() -> None:
    policy = AddressPolicy(allowed_hosts=frozenset({"hr.internal"}))
    await vet("https://hr.internal/hook", policy, names("10.20.30.40"))
    with pytest.raises(Refused):
        await vet("https://other.internal/hook", policy, names("10.20.30.40"))

"""Webhook endpoints, their deliveries and the event feed (policy.md §10), for their owner.

An endpoint belongs to the client that registered it; its secret is shown once, at
registration, and kept sealed. The feed gives a client the events of the cases it submitted,
in order, so one that cannot take webhooks misses nothing; the admin reads everyone's.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from miaopi.notify.address_guard import AddressPolicy, Refused, Resolver, vet
from miaopi.records import events, webhooks
from miaopi.records.clients import Client
from miaopi.records.database import Database
from miaopi.usecases.errors import InvalidInput, NotFound


@dataclass
class Webhooks:
    database: Database
    policy: AddressPolicy
    resolver: Resolver
    clock: Callable[[], datetime]

    async def register(
        self, client: Client, url: str, event_types: Sequence[str] | None
    ) -> tuple[str, str]:
        """(endpoint id, signing secret): the secret is shown this once."""
        try:
            await vet(url, self.policy, self.resolver)
        except Refused as exc:
            raise InvalidInput(["body", "url"], str(exc)) from None
        # Standard Webhooks: "whsec_" and the key in base64; 24 random bytes, as Svix's.
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        endpoint_id = await self.database.run(
            lambda engine: webhooks.create_endpoint(
                engine, client_id=client.id, url=url,
                event_types=list(event_types) if event_types else None, secret=secret,
                now=self.clock(),
            )
        )  # fmt: skip
        return endpoint_id, secret

    async def endpoints(self, client: Client) -> list[Any]:
        return await self.database.run(webhooks.endpoints_of, client.id)

    async def owned(self, client: Client, endpoint_id: str) -> Any:
        found = await self.database.run(webhooks.endpoint, endpoint_id)
        if found is None or found.client_id != client.id:
            raise NotFound("webhook endpoint not found")
        return found

    async def delete(self, client: Client, endpoint_id: str) -> None:
        await self.owned(client, endpoint_id)
        await self.database.run(webhooks.delete_endpoint, endpoint_id, self.clock())

    async def attempts(
        self, client: Client, endpoint_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        await self.owned(client, endpoint_id)
        return await self.database.run_in_thread(
            webhooks.attempts, endpoint_id, limit, cursor
        )

    async def redeliver(self, client: Client, event_id: str) -> int:
        """Send the event again to every active endpoint of its recipient; how many."""
        event = await self.database.run(events.get, event_id)
        if event is None or event.recipient_id != client.id:
            raise NotFound("event not found")
        return await self.database.run(webhooks.redeliver, event_id, self.clock())

    async def feed(self, client: Client, after: int, limit: int) -> list[Any]:
        """The client's events after position ``after`` (the admin: everyone's)."""
        await self.database.run(events.publish, self.clock())  # what committed is readable
        recipient = None if client.role == "admin" else client.id
        return await self.database.run_in_thread(events.feed, recipient, after, limit)

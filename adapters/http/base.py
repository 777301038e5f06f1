"""The part every registry client shares: one lookup over HTTP, every outcome an Evidence.

Wire format (the mock registries serve the same): ``POST {base}/{things}/lookup`` with the key
in a JSON body — never in the URL, where proxies and access logs would keep personal data.
``200 {"reference": "...", "record": {...}}`` is an answer, ``404 {"reference": "..."}`` says
the registry holds no record; anything else means the evidence is missing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from miaopi.adapters.ports import Evidence, EvidenceStatus, RegistryName


class RegistryHttpClient:
    def __init__(self, registry: RegistryName, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.registry = registry
        self._client = client
        self._timeout_s = timeout_s

    async def lookup(
        self, query: str, path: str, body: dict[str, Any], model: type[BaseModel]
    ) -> Evidence:
        queried_at = datetime.now(UTC)
        started = time.perf_counter()

        def done(
            status: EvidenceStatus,
            detail: str | None = None,
            reference: str | None = None,
            record: dict[str, Any] | None = None,
        ) -> Evidence:
            return Evidence(
                registry=self.registry,
                query=query,
                status=status,
                queried_at=queried_at,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                reference=reference,
                record=record,
                detail=detail,
            )

        try:
            # A deadline of our own: transports that run in-process ignore httpx's timeouts.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post(path, json=body)
                content = await response.aread()
        except TimeoutError:
            return done("unavailable", f"no answer within {self._timeout_s:g}s")
        except httpx.TimeoutException:
            return done("unavailable", "timed out")
        except httpx.HTTPError as exc:
            return done("unavailable", f"transport error: {type(exc).__name__}")

        if response.status_code >= 500:
            return done("unavailable", f"registry answered HTTP {response.status_code}")
        try:
            payload = httpx.Response(200, content=content).json()
        except ValueError:
            return done("invalid", f"HTTP {response.status_code} with a body that is not JSON")
        reference = payload.get("reference") if isinstance(payload, dict) else None
        if not isinstance(reference, str):
            reference = None
        if response.status_code == 404:
            return done("no_record", reference=reference)
        if response.status_code != 200:
            return done("unavailable", f"registry refused the query: HTTP {response.status_code}")
        record = payload.get("record") if isinstance(payload, dict) else None
        try:
            parsed = model.model_validate(record)
        except ValidationError as exc:
            fields = sorted({".".join(map(str, e["loc"])) or "record" for e in exc.errors()})
            return done("invalid", f"answer does not fit the schema at: {', '.join(fields)}")
        return done("ok", reference=reference, record=parsed.model_dump(mode="json"))

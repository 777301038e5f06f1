"""The composition root: the one place that wires settings to adapters, engines and stores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

from miaopi.adapters.http.base import RegistryClient, RegistryHttpClient
from miaopi.adapters.http.breaker import CircuitBreaker
from miaopi.adapters.http.registries import (
    HttpCreditRegistry,
    HttpEducationRegistry,
    HttpHrssRegistry,
    HttpOverseasCredentialsRegistry,
    HttpPoliceRegistry,
    HttpSocialSecurityRegistry,
)
from miaopi.adapters.http.transport import RegistryTransport
from miaopi.adapters.mock.dataset import Dataset
from miaopi.adapters.mock.registries import MOCK_APPS
from miaopi.adapters.ports import REGISTRY_NAMES
from miaopi.decision.service import Decider
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.gather import Registries
from miaopi.records.db import close_on_this_loop, make_engine, upgrade
from miaopi.records.revocations import DbRevocationRegister
from miaopi.records.sealing import check_key, resolve_key
from miaopi.settings import Settings
from miaopi.supervision.recheck import Rechecker


def _now() -> datetime:
    return datetime.now(UTC)


class RulesRefused(Exception):
    """New rule files that did not validate or did not pass their test cases."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass
class Container:
    settings: Settings
    db: Engine
    rule_engine: RuleEngine
    registries: Registries
    decider: Decider
    rechecker: Rechecker
    clock: Callable[[], datetime]
    http_clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def rulebook(self) -> RuleBook:
        """The rules in force; the decider holds them, so a reload switches both at once."""
        return self.decider.rulebook

    async def reload_rules(self) -> RuleBook:
        """Load the rule files again; switch only if they validate and their cases pass.

        Reading and checking the files runs in a worker thread; the cases run on the event
        loop's thread, as durable-rules requires. Rulesets that were in use stay registered,
        keyed by fingerprint, so replays of old cases still work.
        """
        from starlette.concurrency import run_in_threadpool

        from miaopi.eligibility.casetests import CaseFileError, load_all, run_cases
        from miaopi.eligibility.ruleset import RuleFileError

        rules_dir = self.settings.resolved_rules_dir()

        def read() -> tuple[RuleBook, list]:  # type: ignore[type-arg]
            return RuleBook.load(rules_dir, self.settings.city_prefix), load_all(rules_dir)

        try:
            book, files = await run_in_threadpool(read)
        except (RuleFileError, CaseFileError) as exc:
            raise RulesRefused([str(exc)]) from exc
        results = run_cases(book, self.rule_engine, files)
        failed = [f"{r.file}: {r.name}: {'; '.join(r.problems)}" for r in results if not r.ok]
        if failed:
            raise RulesRefused(failed)
        self.decider.rulebook = book
        return book

    async def aclose(self) -> None:
        for client in self.http_clients:
            await client.aclose()
        await close_on_this_loop(self.db)
        self.db.dispose()


def open_database(settings: Settings, *, migrate: bool = True) -> Engine:
    """The database with its data key bound, at the newest schema, checked against the key.

    Raises ``DataKeyError`` when no usable key is configured (production) or the key is not
    the one the stored personal data was sealed with.
    """
    key = resolve_key(settings.data_key, settings.environment)
    db = make_engine(
        settings.database_url,
        key,
        pool_size=settings.database_pool_size,
        prepared_statements=settings.database_prepared_statements,
        lock_timeout_s=settings.database_lock_timeout_s,
    )
    try:
        if migrate:
            upgrade(db)
        check_key(db, key)
    except BaseException:
        db.dispose()
        raise
    return db


def registry_client(
    name: str,
    settings: Settings,
    dataset: Callable[[], Dataset],
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The HTTP client for one registry: injected, real over aiohttp, or the in-process mock."""
    url = settings.registry_url(name)
    base_url = (url or f"http://{name}.registry").rstrip("/") + "/"
    if transport is None and url:
        limits = httpx.Limits(
            max_connections=200,
            max_keepalive_connections=100,
            keepalive_expiry=settings.registry_keepalive_s,
        )
        transport = RegistryTransport(limits=limits)
    elif transport is None:
        app = MOCK_APPS[name](dataset(), settings.latency().get(name, 0))
        transport = httpx.ASGITransport(app=app)
        base_url = f"http://{name}.mock/"
    return RegistryClient(base_url=base_url, transport=transport)


def bootstrap(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    clock: Callable[[], datetime] | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> Container:
    settings = settings or Settings()
    clock = clock or _now
    db = open_database(settings, migrate=migrate)
    rulebook = RuleBook.load(settings.resolved_rules_dir(), settings.city_prefix)

    loaded: list[Dataset] = []

    def dataset() -> Dataset:
        if not loaded:
            path = settings.mock_dataset
            loaded.append(Dataset.load(path) if path else Dataset.bundled())
        return loaded[0]

    transports = transports or {}
    clients = {
        name: registry_client(name, settings, dataset, transports.get(name))
        for name in REGISTRY_NAMES
    }
    http = {
        name: RegistryHttpClient(
            name,
            client,
            settings.registry_timeout(name),
            CircuitBreaker(settings.registry_breaker_failures, settings.registry_breaker_reset_s),
        )
        for name, client in clients.items()
    }
    registries = Registries(
        police=HttpPoliceRegistry(http["police"]),
        education=HttpEducationRegistry(http["education"]),
        overseas_credentials=HttpOverseasCredentialsRegistry(http["overseas_credentials"]),
        social_security=HttpSocialSecurityRegistry(http["social_security"]),
        credit=HttpCreditRegistry(http["credit"]),
        hrss=HttpHrssRegistry(http["hrss"]),
        revocations=DbRevocationRegister(db, clock),
    )
    rule_engine = RuleEngine()
    decider = Decider(rulebook, rule_engine, registries, clock)
    return Container(
        settings=settings,
        db=db,
        rule_engine=rule_engine,
        registries=registries,
        decider=decider,
        rechecker=Rechecker(db, rule_engine, registries, lambda: decider.rulebook, clock),
        clock=clock,
        http_clients=list(clients.values()),
    )

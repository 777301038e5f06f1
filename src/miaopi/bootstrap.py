"""The composition root: the one place that wires settings to adapters, engines and stores.

No other module of ``miaopi`` imports ``miaopi.adapters``: the core speaks to the registries
through the ports in ``evidence/ports.py``, and this module chooses what stands behind them.
The in-process mock registries stand there only in development.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

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
from miaopi.certificates.signing import resolve_signing_key
from miaopi.decision.service import Decider
from miaopi.eligibility.calendar import CalendarError, WorkingCalendar
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.ruleset import RuleBook
from miaopi.evidence.gather import Registries
from miaopi.evidence.ports import REGISTRY_NAMES, RegistryName, RevocationRegister
from miaopi.notify.address_guard import AddressPolicy, Resolver, system_resolver
from miaopi.notify.deliverer import Deliverer
from miaopi.notify.transport import GuardedTransport
from miaopi.records.database import Database
from miaopi.records.migrate import upgrade
from miaopi.records.revocations import DbRevocationRegister
from miaopi.records.sealing import check_key, resolve_key
from miaopi.records.unit_of_work import DatabaseUnitOfWork
from miaopi.settings import Settings
from miaopi.usecases.applicant import Applicants
from miaopi.usecases.batches import BatchRunner
from miaopi.usecases.certificates import Certificates
from miaopi.usecases.notices import Notices
from miaopi.usecases.recheck import Rechecker
from miaopi.usecases.second_try import SecondTries
from miaopi.usecases.unit_of_work import UnitOfWork
from miaopi.usecases.webhooks import Webhooks

log = logging.getLogger("miaopi.bootstrap")


def _now() -> datetime:
    return datetime.now(UTC)


class RegistriesMissing(Exception):
    """Production without a URL for a registry the rules ask: it would decide against mocks."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        variables = ", ".join(f"MIAOPI_REGISTRY_{n.upper()}_URL" for n in names)
        super().__init__(
            f"MIAOPI_ENVIRONMENT=production needs a URL for every registry the rules ask: "
            f"set {variables}"
        )


def needed_registries(rulebook: RuleBook) -> list[RegistryName]:
    """The external registries some ruleset of the book asks, in the settings' order."""
    asked = {q.registry for r in rulebook.rulesets for q in r.queries}
    return [name for name in REGISTRY_NAMES if name in asked]


def check_registries(settings: Settings, rulebook: RuleBook) -> None:
    """In production, raise ``RegistriesMissing`` naming every needed registry without a URL."""
    if settings.environment != "production":
        return
    missing = [n for n in needed_registries(rulebook) if not settings.registry_url(n)]
    if missing:
        raise RegistriesMissing(missing)


def mock_dataset(settings: Settings) -> Dataset:
    """The dataset the mock registries serve (``MIAOPI_MOCK_DATASET``, else the personas).

    Raises ``DatasetError`` naming what is wrong with the file.
    """
    return Dataset.load(settings.mock_dataset) if settings.mock_dataset else Dataset.bundled()


async def serve_mocks(
    settings: Settings, dataset: Dataset, host: str, port: int, started: Callable[[int], None]
) -> None:
    """The mock registries over HTTP (``miaopi mock serve``), until cancelled."""
    from miaopi.adapters.mock.registries import serve

    await serve(dataset, host, port, settings.latency(), started)


def generate_population(seed: int, persons: int, today: date) -> Iterator[str]:
    """A deterministic synthetic dataset for the mocks (``miaopi mock generate``), in chunks."""
    from miaopi.adapters.mock.generate import generate

    return generate(seed, persons, today)


class RulesRefused(Exception):
    """New rule files that did not validate or did not pass their test cases."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass
class Container:
    settings: Settings
    database: Database
    rule_engine: RuleEngine
    registries: Registries
    decider: Decider
    rechecker: Rechecker
    second_tries: SecondTries
    webhooks: Webhooks
    deliverer: Deliverer
    batches: BatchRunner
    certificates: Certificates
    applicants: Applicants
    notices: Notices
    clock: Callable[[], datetime]
    uow: UnitOfWork
    calendar: WorkingCalendar
    http_clients: list[httpx.AsyncClient] = field(default_factory=list)
    # Each registry's circuit breaker in this process (closed, half_open, open).
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)

    def breaker_states(self) -> dict[str, str]:
        return {name: breaker.state for name, breaker in self.breakers.items()}

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

        from miaopi.eligibility.casetests import CaseFile, CaseFileError, load_all, run_cases
        from miaopi.eligibility.model import RuleFileError

        rules_dir = self.settings.resolved_rules_dir()

        def read() -> tuple[RuleBook, list[tuple[Path, CaseFile]], WorkingCalendar]:
            book = RuleBook.load(rules_dir, self.settings.city_prefix)
            return book, load_all(rules_dir), WorkingCalendar.load(rules_dir)

        try:
            book, files, calendar = await run_in_threadpool(read)
        except (RuleFileError, CaseFileError, CalendarError) as exc:
            raise RulesRefused([str(exc)]) from exc
        results = run_cases(book, self.rule_engine, files)
        failed = [f"{r.file}: {r.name}: {'; '.join(r.problems)}" for r in results if not r.ok]
        if failed:
            raise RulesRefused(failed)
        self.decider.rulebook = book
        # The authority adds a year's holidays without a release: the calendar comes along.
        self.calendar = calendar
        return book

    async def aclose(self) -> None:
        for client in self.http_clients:
            await client.aclose()
        await self.database.close_on_this_loop()
        self.database.dispose()


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The database with its data key bound, at the newest schema, checked against the key.

    Raises ``DataKeyError`` when no usable key is configured (production) or the key is not
    the one the stored personal data was sealed with.
    """
    key = resolve_key(settings.data_key, settings.environment)
    database = Database(
        settings.database_url,
        key,
        pool_size=settings.database_pool_size,
        prepared_statements=settings.database_prepared_statements,
        lock_timeout_s=settings.database_lock_timeout_s,
    )
    try:
        if migrate:
            upgrade(database.engine)
        check_key(database.engine, key)
    except BaseException:
        database.dispose()
        raise
    return database


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
        if settings.environment != "development":  # check_registries ran first
            raise RegistriesMissing([name])
        app = MOCK_APPS[name](dataset(), settings.latency().get(name, 0))
        transport = httpx.ASGITransport(app=app)
        base_url = f"http://{name}.mock/"
    return RegistryClient(base_url=base_url, transport=transport)


def wire_registries(
    settings: Settings,
    revocations: RevocationRegister,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> tuple[Registries, list[httpx.AsyncClient], dict[str, CircuitBreaker]]:
    """The registry ports, the HTTP clients behind them (to close when done) and their
    circuit breakers: over the given transports, the configured URLs, or, in development, the
    in-process mocks."""
    transports = transports or {}
    mocked = [n for n in REGISTRY_NAMES if n not in transports and not settings.registry_url(n)]
    if mocked:
        log.warning("development: in-process mock registries stand in for %s", ", ".join(mocked))

    loaded: list[Dataset] = []

    def dataset() -> Dataset:
        if not loaded:
            loaded.append(mock_dataset(settings))
        return loaded[0]

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
        revocations=revocations,
    )
    return registries, list(clients.values()), {n: h.breaker for n, h in http.items()}


def bootstrap(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    clock: Callable[[], datetime] | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    resolver: Resolver | None = None,
) -> Container:
    """The service wired: ``transports`` stand in for registries, ``resolver`` for the DNS
    webhooks are checked against (tests)."""
    settings = settings or Settings()
    clock = clock or _now
    rulebook = RuleBook.load(settings.resolved_rules_dir(), settings.city_prefix)
    transports = transports or {}
    check_registries(settings, rulebook)
    database = open_database(settings, migrate=migrate)
    registries, clients, breakers = wire_registries(
        settings, DbRevocationRegister(database, clock), transports
    )
    rule_engine = RuleEngine()
    decider = Decider(rulebook, rule_engine, registries, clock)
    resolver = resolver or system_resolver
    policy = AddressPolicy(settings.webhook_hosts(), settings.environment == "development")
    # Webhooks go out on a client of their own, cut at the timeout, never following a redirect.
    hooks_client = httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver),
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
    )
    uow = DatabaseUnitOfWork(database)
    signing = resolve_signing_key(settings.signing_key, settings.environment)
    container = Container(
        settings=settings,
        database=database,
        uow=uow,
        calendar=WorkingCalendar.load(settings.resolved_rules_dir()),
        rule_engine=rule_engine,
        registries=registries,
        decider=decider,
        rechecker=Rechecker(database, rule_engine, registries, lambda: decider.rulebook, clock),
        second_tries=SecondTries(
            database,
            rule_engine,
            registries,
            rulebook=lambda: decider.rulebook,
            calendar=lambda: container.calendar,
            city_prefix=settings.city_prefix,
            clock=clock,
        ),
        webhooks=Webhooks(database, policy, resolver, clock),
        deliverer=Deliverer(database, hooks_client, clock),
        certificates=Certificates(
            database,
            uow,
            signing,
            settings.city_prefix,
            clock,
            titles=lambda kind: decider.rulebook.title(kind),
            font=settings.certificate_font,
        ),
        applicants=Applicants(database, uow, clock),
        notices=Notices(database, lambda: container.calendar, clock),
        batches=BatchRunner(
            database, uow, decider, settings.city_prefix, lambda: container.calendar, clock
        ),
        clock=clock,
        http_clients=[*clients, hooks_client],
        breakers=breakers,
    )
    return container

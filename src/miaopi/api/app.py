"""The FastAPI application."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from miaopi import __version__
from miaopi.api import docs_ui, errors
from miaopi.api.deps import RecentKeys, reject_unknown_query
from miaopi.api.limits import BodyLimit, DecisionLimit, RateLimiter
from miaopi.api.observe import RequestTelemetry
from miaopi.api.routes import (
    applicant,
    applications,
    audit,
    batches,
    certificates,
    documents,
    events,
    health,
    notices,
    reviews,
    rules,
    stages,
    stats,
)
from miaopi.api.routes.batches import BATCH_PATH, MAX_BATCH_BYTES
from miaopi.api.routes.documents import ENVELOPE_BYTES, UPLOAD_PATH
from miaopi.bootstrap import Container, RulesRefused, bootstrap
from miaopi.console import admin as console_admin
from miaopi.console import draws as console_draws
from miaopi.console import routes as console_routes
from miaopi.console import work as console_work
from miaopi.console.auth import Refused
from miaopi.identifiers import load_tables
from miaopi.telemetry.logs import stamp_request_ids
from miaopi.telemetry.metrics import forget_dead_workers

log = logging.getLogger("miaopi.rules")
supervision_log = logging.getLogger("miaopi.supervision")

DESCRIPTION = """\
秒批 — instant approval of talent-introduction applications, decided from registry evidence
against published, versioned rules, with every criterion explained. See the README and the
contract for roles, scopes and error formats.
"""


def create_app(container: Container | None = None, *, serving: bool = False) -> FastAPI:
    """The app; ``serving`` for a server process that runs it until it stops (see
    ``settle_for_serving``)."""
    container = container or bootstrap()

    async def reload() -> None:
        try:
            book = await container.reload_rules()
        except RulesRefused as exc:
            log.error("rule reload refused, the rules in force are unchanged: %s", exc)
        else:
            log.warning("rules reloaded: %d versions", len(book.rulesets))

    reloads: set[asyncio.Task[None]] = set()

    def on_sighup() -> None:
        task = asyncio.get_running_loop().create_task(reload())
        reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(reloads.discard)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = container.database.statement_threads()
        container.database.open_on_this_loop()  # closed by container.aclose()
        # SIGHUP reloads the rules on the event loop's thread (durable-rules must stay there).
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        interval = container.settings.recheck_interval_s
        scheduler = loop.create_task(recheck_every(container, interval)) if interval else None
        every = container.settings.second_try_interval_s
        retrier = loop.create_task(second_tries_every(container, every)) if every else None
        # Webhooks go out from a task of their own: never on a decision's request path.
        pace = container.settings.webhook_interval_s
        sender = loop.create_task(container.deliverer.run_every(pace)) if pace else None
        # Batches are decided a few items at a time, beside the requests sent one by one.
        gap = container.settings.batch_interval_s
        batcher = loop.create_task(container.batches.run_every(gap)) if gap else None
        if serving:
            forget_dead_workers()  # a worker that replaces a killed one clears its gauges
            settle_for_serving(container)
        yield
        for task in (scheduler, retrier, sender, batcher):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)
        await container.aclose()

    app = FastAPI(
        title="miaopi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # docs_ui serves both pages without a CDN
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.container = container
    settings = container.settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.recent_keys = RecentKeys()
    # Calls that need no account (certificate verification): limited per address.
    app.state.public_limiter = RateLimiter(60, 20)
    # Wrong access codes (the applicant's view), and objections: per address, tighter.
    app.state.wrong_code_limiter = RateLimiter(10, 10)
    app.state.objection_limiter = RateLimiter(2, 5)
    # Each middleware added wraps those before it: DecisionLimit reads a body that BodyLimit,
    # around it, has bounded, before it takes a place.
    app.add_middleware(DecisionLimit, limit=settings.max_decisions_in_flight)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger=[
            (UPLOAD_PATH, settings.max_document_bytes + ENVELOPE_BYTES),
            (BATCH_PATH, MAX_BATCH_BYTES),
        ],
    )
    stamp_request_ids()
    app.add_middleware(RequestTelemetry)  # outermost: sees every answer, 413s included
    errors.install(app)
    app.include_router(applications.router)
    app.include_router(rules.router)
    app.include_router(audit.router)
    app.include_router(reviews.router)
    app.include_router(documents.router)
    app.include_router(events.router)
    app.include_router(batches.router)
    app.include_router(certificates.router)
    app.include_router(stages.router)
    app.include_router(applicant.router)
    app.include_router(notices.router)
    app.include_router(stats.router)
    app.include_router(console_routes.router)
    app.include_router(console_work.router)
    app.include_router(console_draws.router)
    app.include_router(console_admin.router)

    @app.exception_handler(Refused)
    async def _console_refused(_: Request, exc: Refused) -> Response:
        return exc.response
    app.include_router(health.router)
    docs_ui.install(app)
    _list_business_types(app, container)
    return app


def _list_business_types(app: FastAPI, container: Container) -> None:
    """The OpenAPI document names the business types of the rules loaded as an ``enum``."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        document = made()
        types = container.rulebook.business_types()
        for schema in document.get("components", {}).get("schemas", {}).values():
            field = schema.get("properties", {}).get("business_type")
            if field is not None:
                _enumerate(field, types)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "business_type":
                        _enumerate(parameter["schema"], types)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _enumerate(schema: dict[str, Any], types: list[str]) -> None:
    for option in schema.get("anyOf", [schema]):  # an optional field: [string, null]
        if option.get("type") == "string":
            option["enum"] = list(types)  # a list of its own: YAML would anchor a shared one


# Container objects a server process may gain, net, before a young collection: CPython's 700
# is crossed by any burst of requests in flight, though a request's objects die with it.
YOUNG_COLLECTION_AFTER = 20_000


def settle_for_serving(container: Container) -> None:
    """Compile the rules in force, exempt what startup built from garbage collection, and
    collect only when objects pile up.

    A full collection walks every object the process holds, and startup builds most of them
    (modules, the app, schemas, compiled rules), and under load a full collection every few
    seconds stopped the event loop with every request in flight waiting: that pause was the
    p99 overhead at moderate load. Frozen, they are left out. Only for
    a server process: frozen objects are never collected, so a process that builds apps
    again and again (the test suite) would keep every one of them.

    A request's objects are freed by their reference counts when it ends; collections find
    next to nothing. CPython starts a young collection once 700 more container objects are
    alive than at the last one, which 64 requests in flight cross again and again, each
    collection finding next to nothing. Cyclic garbage (an exception's traceback, say) is still
    collected, once that many objects have piled up; such a collection takes a few ms.
    """
    for ruleset in container.rulebook.rulesets:
        container.rule_engine.prepare(ruleset)  # on the loop's thread, as durable-rules needs
    load_tables()  # else read at the first request, after the freeze
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, *gc.get_threshold()[1:])


async def recheck_every(container: Container, interval_s: float) -> None:
    """The optional in-process scheduler of the periodic re-check; a failed run is logged."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            report = await container.rechecker.run()
            supervision_log.info("re-check: %s", report.summary())
        except Exception:
            supervision_log.exception("re-check run failed; the next run tries again")


async def second_tries_every(container: Container, interval_s: float) -> None:
    """Decide the second tries that are due (policy §9); a failed run is logged."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await container.second_tries.run()
        except Exception:
            supervision_log.exception("second tries failed; the next run tries again")


def create_app_from_env() -> FastAPI:
    """Uvicorn factory for worker processes; ``miaopi serve`` has already migrated."""
    return create_app(bootstrap(migrate=False), serving=True)

"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from miaopi import __version__
from miaopi.api import errors
from miaopi.api.routes import applications, health, rules
from miaopi.bootstrap import Container, bootstrap

DESCRIPTION = """\
秒批 — instant approval of talent-introduction applications, decided from registry evidence
against published, versioned rules, with every criterion explained. See the README and the
contract for roles, scopes and error formats.
"""


def create_app(container: Container | None = None) -> FastAPI:
    container = container or bootstrap()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await container.aclose()

    app = FastAPI(
        title="miaopi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.container = container
    errors.install(app)
    app.include_router(applications.router)
    app.include_router(rules.router)
    app.include_router(health.router)
    return app


def create_app_from_env() -> FastAPI:
    """Uvicorn factory for worker processes; ``miaopi serve`` has already migrated."""
    return create_app(bootstrap(migrate=False))

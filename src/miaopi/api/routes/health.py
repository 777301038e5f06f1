"""Liveness and readiness, unauthenticated for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text

from miaopi.api.deps import ContainerDep
from miaopi.api.schemas import HealthOut
from miaopi.api.strict_json import StrictJsonRoute
from miaopi.bootstrap import Container
from miaopi.telemetry.metrics import exposition

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


@router.get("/healthz", response_model=HealthOut, summary="Liveness")
async def healthz() -> Any:
    return {"status": "ok", "checks": {}}


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _database_ok(container: Container) -> bool:
    try:
        await container.database.run_in_thread(_select_one)
    except Exception:
        return False
    return True


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Not ready"}},
    summary="Readiness: the database answers and rules are loaded",
)
async def readyz(container: ContainerDep) -> Any:
    checks = {
        "database": "ok" if await _database_ok(container) else "unavailable",
        "rules": "ok" if container.rulebook.rulesets else "none loaded",
    }
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)

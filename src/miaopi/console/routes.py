"""The console's doors: sign-in and sign-out, the language switch, each role's home, and the
police registrar's page. The other roles' pages are in ``work.py`` and ``admin.py``."""

from __future__ import annotations

from importlib.resources import as_file, files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from miaopi.api.errors import as_problem
from miaopi.api.routes.stages import RegistrationIn
from miaopi.console.auth import (
    COOKIE,
    HOME,
    PRE_COOKIE,
    form_of,
    new_signin_token,
    session_for,
    set_cookie,
    signin_token_matches,
)
from miaopi.console.i18n import LANGUAGES
from miaopi.console.pages import HEADERS, redirect, render
from miaopi.records import console_sessions as sessions
from miaopi.records.clients import authenticate
from miaopi.usecases import stages as stage_list
from miaopi.usecases.errors import UseCaseError

router = APIRouter(prefix="/console", include_in_schema=False)
# The registration form's fields, by the words its labels show (the catalogue's message ids).
LABELS = {"approval_number": "Approval number", "id_number": "ID number",
          "registered_on": "Registered on", "police_station": "Police station"}  # fmt: skip


@router.get("/static/console.css")
async def stylesheet() -> Response:
    with as_file(files("miaopi.console").joinpath("static/console.css")) as path:
        return FileResponse(path, media_type="text/css",
                            headers={**HEADERS, "Cache-Control": "max-age=3600"})  # fmt: skip


@router.get("/")
async def home(request: Request) -> Response:
    session = await session_for(request)
    return redirect(HOME[session.client.role])


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    token = new_signin_token()
    page = render(request, "sign_in.html", token=token)
    set_cookie(request, page, PRE_COOKIE, token)
    return page


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    token, key = form.get("csrf"), form.get("api_key")
    if not signin_token_matches(request, token if isinstance(token, str) else None):
        return render(request, "refused.html", status=403, reason="csrf")
    container = request.app.state.container
    client = None
    if isinstance(key, str) and key.strip():
        client = await container.database.run(authenticate, key.strip())
    if client is None:
        again = new_signin_token()
        page = render(request, "sign_in.html", status=401, token=again, error="bad_key")
        set_cookie(request, page, PRE_COOKIE, again)
        return page
    if client.role not in sessions.ROLES:
        # Employers and channels have their own systems, and the API.
        return render(request, "refused.html", status=403, reason="not_console")
    session_id = await container.database.run(sessions.begin, client, container.clock())
    done = redirect("/console/")
    set_cookie(request, done, COOKIE, session_id)
    done.delete_cookie(PRE_COOKIE, path="/console")
    return done


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = await session_for(request)
    await form_of(request, session)
    await request.app.state.container.database.run(sessions.end, request.cookies[COOKIE])
    done = redirect("/console/sign-in")
    done.delete_cookie(COOKIE, path="/console")
    return done


@router.get("/language/{lang}")
async def switch_language(request: Request, lang: str, back: str = "/console/") -> Response:
    done = redirect(back if back.startswith("/console/") else "/console/")
    if lang in LANGUAGES:
        done.set_cookie("lang", lang, samesite="strict", path="/console", max_age=31_536_000)
    return done


# --- the police registrar -------------------------------------------------------------------


@router.get("/registrar")
async def registrar(request: Request) -> Response:
    session = await session_for(request, "registrar")
    return render(request, "registrar.html", session=session)


@router.post("/registrar/verify")
async def registrar_verify(request: Request) -> Response:
    session = await session_for(request, "registrar")
    form = await form_of(request, session)
    container = request.app.state.container
    token, id_number = form.get("token", "").strip(), form.get("id_number", "").strip() or None
    verdict = None
    if token:
        verdict = (await container.certificates.verify(token, id_number)).public()
    return render(request, "registrar.html", session=session, verdict=verdict,
                  id_number=id_number or "", token=token)  # fmt: skip


@router.post("/registrar/registrations")
async def registrar_register(request: Request) -> Response:
    session = await session_for(request, "registrar")
    form = await form_of(request, session)
    container = request.app.state.container
    fields = ("approval_number", "id_number", "registered_on", "police_station")
    values: dict[str, Any] = {k: form.get(k, "").strip() for k in fields}
    try:
        given = RegistrationIn.model_validate(values)  # as the API takes it
    except ValidationError as exc:
        wrong = [label for name, label in LABELS.items()
                 if name in {e["loc"][0] for e in exc.errors()}]  # fmt: skip
        return render(request, "registrar.html", status=422, session=session, form=values,
                      error="fields", wrong=wrong)  # fmt: skip
    try:
        await stage_list.register_household(
            container.database, session.client, approval_number=given.approval_number,
            id_number=given.id_number, registered_on=given.registered_on,
            police_station=given.police_station, now=container.clock(),
        )  # fmt: skip
    except UseCaseError as exc:
        problem = as_problem(exc)
        return render(request, "registrar.html", status=problem.status, session=session,
                      form=values, error=problem.slug, detail=str(exc))  # fmt: skip
    return render(request, "registrar.html", session=session, registered=values)

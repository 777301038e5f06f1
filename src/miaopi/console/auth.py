"""Who is using the console: sign-in with an API key, the session cookie, roles and CSRF."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from miaopi.console.pages import redirect, render
from miaopi.records import console_sessions as sessions
from miaopi.records.console_sessions import Session

COOKIE = "miaopi_session"
PRE_COOKIE = "miaopi_signin"  # the sign-in form's own CSRF token, before there is a session
HOME = {
    "officer": "/console/reviews",
    "auditor": "/console/tasks",
    "registrar": "/console/registrar",
    "admin": "/console/dashboard",
}


class Refused(Exception):
    """The request cannot go on: ``response`` says why (a sign-in page, a 403)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def secure(request: Request) -> bool:
    """Cookies are ``Secure`` everywhere but a development server on plain HTTP."""
    return request.app.state.container.settings.environment != "development"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=secure(request), path="/console"
    )


async def session_for(request: Request, *roles: str) -> Session:
    """The request's session, of one of ``roles``; ``Refused`` otherwise: no session goes to
    the sign-in page, another role's session gets a 403 page."""
    container = request.app.state.container
    session_id = request.cookies.get(COOKIE)
    found = None
    if session_id:
        found = await container.database.run(sessions.current, session_id, container.clock())
    if found is None:
        raise Refused(redirect("/console/sign-in"))
    if roles and found.client.role not in roles:
        raise Refused(render(request, "refused.html", status=403, session=found,
                             reason="role"))  # fmt: skip
    return found


async def form_of(request: Request, session: Session) -> dict[str, Any]:
    """The posted form, once its CSRF token is the session's; ``Refused`` (403) otherwise."""
    form = await request.form()
    sent = form.get("csrf")
    if not session.csrf_matches(sent if isinstance(sent, str) else None):
        raise Refused(render(request, "refused.html", status=403, session=session, reason="csrf"))
    return {k: v for k, v in form.items() if isinstance(v, str)}


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def signin_token_matches(request: Request, sent: str | None) -> bool:
    kept = request.cookies.get(PRE_COOKIE)
    return bool(kept and sent and hmac.compare_digest(kept, sent))

"""Rendering console pages: the language, the templates and the headers every page carries.

No page runs a script: the Content-Security-Policy allows none, and none is needed (forms and
links do the work; progressive enhancement has nothing to enhance yet). Styles come from the
console's own stylesheet only.
"""

from __future__ import annotations

import math
from typing import Any

from babel.units import format_unit
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from miaopi.console.i18n import LANGUAGES, language_of, translations

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# An uploaded document, previewed in its page: shown inline, framed by the console only, its
# type the one its content was found to be (PDF, JPEG or PNG), never kept by a cache.
DOCUMENT_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Disposition": "inline",
}


# A time in the unit a person reads it in: seconds for a decision, days for a counter review.
_UNITS = ((60.0, 1.0, "duration-second"), (3600.0, 60.0, "duration-minute"),
          (86400.0, 3600.0, "duration-hour"), (math.inf, 86400.0, "duration-day"))  # fmt: skip
_LOCALES = {"zh": "zh_CN", "en": "en"}


def duration(seconds: float | None, lang: str) -> str:
    """``seconds`` in words of the language (CLDR's units, by Babel); a dash for none."""
    if seconds is None:
        return "—"
    for below, size, unit in _UNITS:
        if seconds < below:
            value = round(seconds / size, 2 if size == 1.0 else 1)
            return format_unit(value, unit, length="short", locale=_LOCALES[lang])
    raise AssertionError("unreachable: the last unit has no bound")  # pragma: no cover


def _environment(lang: str) -> Environment:
    env = Environment(
        loader=PackageLoader("miaopi.console", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["duration"] = lambda seconds: duration(seconds, lang)
    return env


ENVIRONMENTS = {lang: _environment(lang) for lang in LANGUAGES}


def language(request: Request) -> str:
    return language_of(request.cookies.get("lang"), request.headers.get("accept-language"))


def render(
    request: Request, template: str, *, status: int = 200, session: Any = None, **context: Any
) -> HTMLResponse:
    lang = language(request)
    html = (
        ENVIRONMENTS[lang]
        .get_template(template)
        .render(lang=lang, session=session, path=request.url.path, **context)
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=HEADERS)

"""The console's languages: Chinese by default, English by a switch, from Babel catalogues.

The templates are written with English message ids; ``locale/zh_CN/LC_MESSAGES/messages.po``
translates them. The catalogue is compiled in memory when the console starts, so no compiled
file is kept in the repository or built at install.
"""

from __future__ import annotations

import io
from functools import cache
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from miaopi.api.errors import first_language

LANGUAGES = ("zh", "en")
DEFAULT = "zh"


@cache
def translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    source = files("miaopi.console").joinpath("locale/zh_CN/LC_MESSAGES/messages.po")
    with source.open("rb") as po:
        catalog = read_po(po, locale="zh_CN")
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def language_of(cookie: str | None, accept_language: str | None) -> str:
    """The console's language: the switch's cookie, else English only if the browser puts
    English first; Chinese otherwise."""
    if cookie in LANGUAGES:
        return str(cookie)
    return "en" if first_language(accept_language).startswith("en") else DEFAULT

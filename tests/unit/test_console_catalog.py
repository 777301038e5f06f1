"""Every word the console shows has its Chinese: the catalogue covers what the templates and
the console's code ask for, so no page falls back to English in the middle of Chinese."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import REPO

CONSOLE = REPO / "src" / "miaopi" / "console"
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def test_the_chinese_catalogue_translates_every_message_of_the_console() -> None:
    asked = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(CONSOLE), METHODS, keywords={"_": None}, options_map=OPTIONS
        )
        if isinstance(message, str)
    }
    with (CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    untranslated = sorted(m for m in asked if not (catalog.get(m) and catalog.get(m).string))
    assert len(asked) > 100
    assert untranslated == []

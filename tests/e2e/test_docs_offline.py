"""/docs and /redoc work on a network without internet: nothing they load is fetched outside."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

pytestmark = pytest.mark.anyio


class _Links(HTMLParser):
    """Every URL a page makes the browser fetch: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _fetched(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    # And any URL written into the page's inline script (Swagger UI's spec URL, ReDoc's).
    inline = re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    return parser.urls + inline


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_pages_load_nothing_from_outside(api: httpx.AsyncClient, page: str) -> None:
    answer = await api.get(page)
    assert answer.status_code == 200
    urls = _fetched(answer.text)
    assert urls, "the page loads its assets"
    outside = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert outside == []
    assert "fonts.googleapis" not in answer.text
    for url in urls:  # each one the service serves itself
        fetched = await api.get(url)
        assert fetched.status_code == 200, url
        assert fetched.content, url

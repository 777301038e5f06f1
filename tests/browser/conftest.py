"""The console in a real browser: miaopi served by uvicorn on loopback, Debian's Chromium driven
by Playwright (headless; its own browser download is never used: scripts/test installs the
``chromium`` package)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, REPO, RULES, Clock

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update",
]  # fmt: skip
# Screenshots are kept as the run's artifacts; MIAOPI_DOCS_SCREENSHOTS=1 also refreshes docs/.
ARTIFACTS = Path(os.environ.get("MIAOPI_ARTIFACTS", REPO / "var" / "test-artifacts"))
DOCS_SHOTS = REPO / "docs" / "console"


def chromium() -> str:
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Debian's chromium package is not installed: scripts/test installs it")


@dataclass
class Console:
    url: str
    container: Container
    keys: dict[str, str]

    def api(self, method: str, path: str, role: str = "channel", **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            return client.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    settings = Settings(
        database_url=f"sqlite:///{tmp}/console.db", rules_dir=RULES, data_key=DATA_KEY,
        _env_file=None,  # type: ignore[call-arg]
    )  # fmt: skip
    container = bootstrap(settings, clock=Clock())
    engine = container.database.engine
    keys = {}
    for role, kw in (
        ("officer", {"district": "440306"}), ("auditor", {"district": "440305"}),
        ("registrar", {}), ("admin", {}), ("channel", {}),
        ("employer", {"uscc": "91440304MA5H3T8P2L"}),
    ):  # fmt: skip
        _, keys[role] = create_client(engine, role, f"{role} 测试", **kw)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))  # fmt: skip

    def serve() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(server.serve())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the console's server did not start")
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Console(f"http://127.0.0.1:{port}", container, keys)
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def screenshot(page: Any, name: str) -> None:
    """The page as the person sees it, kept with the run (and in docs/ when asked)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if os.environ.get("MIAOPI_DOCS_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / f"{name}.png", DOCS_SHOTS / f"{name}.png")

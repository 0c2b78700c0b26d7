"""Open built book pages in headless Chromium, driven by Playwright, and gather their facts.

:func:`serve` serves a built book on a loopback port; :func:`chromium` starts Debian's Chromium
(Playwright downloads no browser); :func:`open_page` opens one page in a fresh context, records
console errors and failed requests (refusing every request to another site: the book must work
offline), and gathers the facts ``tests/page_checks.py`` checks (``browser_collect.js``, which
waits for the images, for MathJax's typesetting and for the fonts).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

#: Debian's chromium package; ``CNNCOURSE_CHROMIUM`` names another Chromium or Chrome binary.
CHROMIUM = Path(os.environ.get("CNNCOURSE_CHROMIUM", "/usr/bin/chromium"))
#: Headless, and quiet: without the networking flags Chromium calls home at every start.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 900}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean: no line per request."""


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def why_no_browser() -> str | None:
    """Why the browser tests cannot run here (one sentence with the fix), or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: run `python3 -m uv sync --frozen` (a dev dependency)."
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return (
            f"no Chromium at {CHROMIUM}: install Debian's chromium package "
            "(`apt-get install chromium`, as .ci/run does) or set CNNCOURSE_CHROMIUM to a "
            "Chromium binary."
        )
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (Debian's binary; Playwright downloads nothing)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session", name="browser")
def browser_fixture() -> Iterator[Any]:
    """One Chromium for the whole test session: Playwright's sync API runs one at a time.

    ``tests/conftest.py`` imports this, so every browser test module shares the one browser.
    """
    with chromium() as browser:
        yield browser


_COLLECT_JS = (Path(__file__).with_name("browser_collect.js")).read_text(encoding="utf-8")


def collect(page: Any) -> dict[str, Any]:
    """The facts the checks need, gathered in the page by ``browser_collect.js``."""
    return page.evaluate(_COLLECT_JS)


@dataclass
class PageData:
    """What one visit to a page saw: the DOM facts (``dom``), errors and failed requests."""

    url: str
    dom: dict[str, Any]
    console: list[str]
    failed_requests: list[str]
    seconds: float


@contextmanager
def open_page(browser: Any, url: str, gather: bool = True) -> Iterator[tuple[Any, PageData]]:
    """Open ``url`` in a fresh context; yields the Playwright page and what was seen on it.

    With ``gather=False`` the page's facts are not gathered (``PageData.dom`` is empty), for a
    page that navigates away by itself, such as the redirecting ``index.html``.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    console: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")

    def refuse_remote(route: Any) -> None:
        failed.append(f"{route.request.url} (another site: the book must work offline)")
        route.abort()

    context.route(lambda u: not u.startswith((origin, "data:", "blob:", "about:")), refuse_remote)
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            console.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda error: console.append(f"uncaught {error.name}: {error.message}"))
    page.on(
        "requestfailed",
        lambda r: failed.append(f"{r.url} ({r.failure})") if r.url.startswith(origin) else None,
    )
    page.on(
        "response",
        lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None,
    )
    try:
        page.goto(url, wait_until="load")
        dom = collect(page) if gather else {}
        # Let late requests (fonts, images) finish, so that their failures are seen; a page
        # that never goes idle is judged on what it did in those 10 s.
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_load_state("networkidle", timeout=10_000)
        data = PageData(page.url, dom, console, failed, time.perf_counter() - started)
        yield page, data
    finally:
        context.close()


def load_page(browser: Any, url: str) -> PageData:
    """Open ``url``, collect its facts, close it."""
    with open_page(browser, url) as (_, data):
        return data

"""Every page of the built book, opened in headless Chromium: it must load cleanly and be whole.

The pages are those ``_toc.yml`` lists when the tests are collected, so a chapter added to the
TOC is tested from then on. The book is the session's one build (``html_dir``, shared with
tests/test_book.py); a local HTTP server serves it, and Playwright drives Debian's Chromium
(``tests/browser.py`` says what each check looks at). Each page is opened once and its facts
are shared by the per-check tests below, so a failure names both the page and the check.

Where no browser can be had, every test here is skipped with the reason and the fix (``pytest
-ra`` lists it). Screenshots of the home page and of the first chapter are saved under
``_build/screenshots/`` (git-ignored) for a maintainer to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from book_build import REPO_ROOT, WIDGET_PAGE
from book_pages import Book, toc_docnames
from browser import PageData, open_page, serve, why_no_browser
from page_checks import (
    Problem,
    check_console,
    check_images,
    check_launch,
    check_layout,
    check_links,
    check_math,
    check_outputs,
    check_requests,
    check_sidebar,
    check_title,
)

TOC_PAGES = toc_docnames(REPO_ROOT / "_toc.yml")
NOTEBOOK_PAGES = [name for name in TOC_PAGES if (REPO_ROOT / f"{name}.ipynb").is_file()]
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
NO_BROWSER = why_no_browser()

if NO_BROWSER is not None:
    pytest.skip(f"browser tests skipped: {NO_BROWSER}", allow_module_level=True)


@pytest.fixture(scope="session")
def site(html_dir: Path) -> Iterator[str]:
    with serve(html_dir) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def book(book_root: Path, html_dir: Path) -> Book:
    return Book.load(book_root, html_dir)


@pytest.fixture(scope="session")
def visit(browser: Any, site: str) -> Callable[[str], PageData]:
    """``visit(docname)``: what the browser saw on that page (each page is opened once)."""
    seen: dict[str, PageData] = {}

    def get(docname: str) -> PageData:
        if docname not in seen:
            with open_page(browser, f"{site}/{docname}.html") as (_, data):
                seen[docname] = data
        return seen[docname]

    return get


def _verdict(docname: str, problems: list[Problem]) -> str:
    return f"{docname}.html:\n  " + "\n  ".join(str(problem) for problem in problems)


def test_the_pages_tested_are_the_tocs(book: Book) -> None:
    """The list collected above is the built book's TOC (less the book test's widget page)."""
    assert [name for name in book.pages if name != WIDGET_PAGE] == TOC_PAGES


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_page_loads_without_errors_or_failed_requests(
    docname: str, visit: Callable[[str], PageData]
) -> None:
    data = visit(docname)
    problems = check_console(data) + check_requests(data)
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_page_has_its_title_and_headings_in_the_sidebar(
    docname: str, visit: Callable[[str], PageData], book: Book
) -> None:
    data, source = visit(docname), book.pages[docname]
    problems = check_title(data, source, book) + check_sidebar(data, source, book)
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_every_internal_link_and_anchor_resolves(
    docname: str, visit: Callable[[str], PageData], book: Book
) -> None:
    problems = check_links(visit(docname), book.html_dir)
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_every_image_loads_and_has_alt_text(
    docname: str, visit: Callable[[str], PageData], book: Book
) -> None:
    problems = check_images(visit(docname), book.pages[docname])
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_math_is_typeset_and_no_raw_tex_is_left(
    docname: str, visit: Callable[[str], PageData]
) -> None:
    problems = check_math(visit(docname))
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", NOTEBOOK_PAGES)
def test_notebook_outputs_are_on_the_page(
    docname: str, visit: Callable[[str], PageData], book: Book
) -> None:
    data, source = visit(docname), book.pages[docname]
    assert source.output_cells > 0, f"{docname}: the committed notebook has no outputs"
    problems = check_outputs(data, source)
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_launch_buttons_open_the_chapter_in_the_configured_repository(
    docname: str, visit: Callable[[str], PageData], book: Book
) -> None:
    problems = check_launch(visit(docname), book.pages[docname], book.config)
    assert not problems, _verdict(docname, problems)


@pytest.mark.parametrize("docname", TOC_PAGES)
def test_code_wraps_instead_of_scrolling_sideways(
    docname: str, visit: Callable[[str], PageData]
) -> None:
    problems = check_layout(visit(docname))
    assert not problems, _verdict(docname, problems)


def test_the_home_page_leads_to_the_intro_and_screenshots_are_saved(
    browser: Any, site: str, book: Book
) -> None:
    """``index.html`` redirects to the root page; the home page and a chapter are photographed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    root = next(iter(book.pages))
    with open_page(browser, f"{site}/index.html", gather=False) as (page, _):
        page.wait_for_url(f"**/{root}.html", timeout=10_000)
        page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)
    chapter = NOTEBOOK_PAGES[0] if NOTEBOOK_PAGES else root
    with open_page(browser, f"{site}/{chapter}.html") as (page, _):
        page.screenshot(path=SCREENSHOTS / "chapter.png")
        figures = page.locator("div.cell_output img")
        if figures.count():
            figures.first.scroll_into_view_if_needed()
            page.screenshot(path=SCREENSHOTS / "chapter-figure.png")
    for name in ("home.png", "chapter.png"):
        shot = SCREENSHOTS / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
        assert shot.stat().st_size > 10_000, f"{shot} is suspiciously small (a blank page?)"

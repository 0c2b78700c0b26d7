"""The browser checks fail on broken pages: a small book with one breakage per page proves it.

The fixture book is built exactly like the course book (``tools/build_book.py``, warnings as
errors, the course's ``_config.yml`` and stylesheet), so every breakage below slips through the
build and only the browser catches it: a link to a missing page and to a missing anchor, a
notebook figure without alt text, TeX left raw in an HTML block, a script error, a missing and a
remote image. Two pages with nothing wrong show that the checks do not fire on a good page.
Checks whose breakage a source cannot produce past the build (title, sidebar, outputs, launch
links, layout) are shown to fail on the good page's real facts, altered one at a time.
"""

from __future__ import annotations

import base64
import copy
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from book_build import REPO_ROOT, build_tool, copy_book_sources
from book_pages import Book
from browser import PageData, collect, open_page, serve, why_no_browser
from page_checks import (
    ALT_HINT,
    check_launch,
    check_layout,
    check_outputs,
    check_page,
    check_sidebar,
    check_title,
)

NO_BROWSER = why_no_browser()
if NO_BROWSER is not None:
    pytest.skip(f"browser tests skipped: {NO_BROWSER}", allow_module_level=True)

LONG_LINE = "total = " + " + ".join(f"weight_{i} * pixel_{i}" for i in range(12))
PAGES: dict[str, str] = {
    "intro.md": "# Fixture book\n\nMaths inline, $x^2$, and on its own line:\n\n"
    "$$\n\\sum_{i=1}^{n} x_i\n$$\n\n## What is here\n\nOne broken page per check.\n",
    "broken_link.md": '# A broken link\n\n<p>See <a href="no-such-page.html">a page that was '
    'never written</a> and <a href="good.html#no-such-section">a missing section</a>.</p>\n',
    "raw_tex.md": "# Raw TeX\n\n<div>An HTML block keeps its maths as text: "
    "$\\sum_i \\ell_i$.</div>\n",
    "console_error.md": "# A script error\n\n<script>courseFixtureMissingFunction();</script>\n",
    "failed_requests.md": "# Failed requests\n\n"
    '<img src="_static/no-such-figure.png" alt="A figure that was never drawn">\n\n'
    '<img src="https://example.org/figure.png" alt="A figure on another site">\n',
}
#: page -> (the kinds of problem the checks must report, words their messages must contain)
BROKEN = {
    "broken_link": ({"link"}, ["no-such-page.html", "'no-such-section'"]),
    "missing_alt": ({"image"}, ["no alt text", "code cell 1 ", ALT_HINT]),
    "raw_tex": ({"math"}, ["raw TeX", "\\sum_i \\ell_i"]),
    "console_error": ({"console"}, ["courseFixtureMissingFunction"]),
    "failed_requests": ({"request", "image"}, ["HTTP 404", "another site", "did not load"]),
}


def _png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    """A small solid-colour PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + (chunk(b"IEND", b""))
    )


def _notebook(title: str, png: bytes, alt: str | None) -> nbformat.NotebookNode:
    """A chapter-like notebook: headings, maths, a figure output, a table and a long code line."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    figure = nbformat.v4.new_code_cell(
        "plt.show()",
        execution_count=1,
        outputs=[
            nbformat.v4.new_output(
                "display_data",
                data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
            ),
            nbformat.v4.new_output("stream", name="stdout", text="drawn\n"),
        ],
    )
    if alt is not None:
        figure.metadata["mystnb"] = {"image": {"alt": alt}}
    table = (
        "<table><tr><th>layer</th><th>parameters</th></tr><tr><td>conv</td><td>9</td></tr></table>"
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\nThe area is $a^2 + b^2$.\n\n## A figure"),
        figure,
        nbformat.v4.new_markdown_cell("## A table\n\n### Its `columns`"),
        nbformat.v4.new_code_cell(
            f"{LONG_LINE}\ntable()",
            execution_count=2,
            outputs=[
                nbformat.v4.new_output("display_data", data={"text/html": table, "text/plain": "t"})
            ],
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def fixture_book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    root = copy_book_sources(
        tmp_path_factory.mktemp("fixture-book"), ("_config.yml", "book/_static")
    )
    for name, text in PAGES.items():
        (root / name).write_text(text, encoding="utf-8")
    nbformat.write(
        _notebook("A good chapter", _png((40, 90, 200)), "A blue square."), root / "good.ipynb"
    )
    nbformat.write(
        _notebook("A figure without alt text", _png((200, 60, 40)), None),
        root / "missing_alt.ipynb",
    )
    pages = ["good", *BROKEN]
    toc = "format: jb-book\nroot: intro\nchapters:\n" + "".join(f"  - file: {p}\n" for p in pages)
    (root / "_toc.yml").write_text(toc, encoding="utf-8")
    html_dir = build_tool.build_book(root, repo_root=REPO_ROOT, fresh=True)
    return Book.load(root, html_dir)


@pytest.fixture(scope="module")
def fixture_site(fixture_book: Book) -> Iterator[str]:
    with serve(fixture_book.html_dir) as base_url:
        yield base_url


UNWRAP = ".bd-article div.highlight pre { white-space: pre !important; }"


@pytest.fixture(scope="module")
def good_visit(browser: Any, fixture_site: str) -> tuple[PageData, PageData]:
    """The good page's facts, and its facts again once a style undoes course.css's wrapping."""
    with open_page(browser, f"{fixture_site}/good.html") as (page, data):
        page.add_style_tag(content=UNWRAP)
        unwrapped = PageData(data.url, collect(page), [], [], 0.0)
    return data, unwrapped


@pytest.fixture(scope="module")
def good_page(good_visit: tuple[PageData, PageData]) -> PageData:
    return good_visit[0]


@pytest.mark.parametrize("docname", ["intro", "good"])
def test_a_good_page_passes_every_check(
    docname: str, browser: Any, fixture_site: str, fixture_book: Book, good_page: PageData
) -> None:
    if docname == "good":
        data = good_page
        # ... and it really has what the checks look at
        assert data.dom["math"]["count"] > 0 and len(data.dom["images"]) >= 3
        assert data.dom["outputs"] == {"cells": 2, "images": 1, "tables": 1}
    else:
        with open_page(browser, f"{fixture_site}/{docname}.html") as (_, data):
            pass
    assert check_page(data, fixture_book.pages[docname], fixture_book) == []


@pytest.mark.parametrize("docname", list(BROKEN))
def test_the_checks_catch_a_broken_page(
    docname: str, browser: Any, fixture_site: str, fixture_book: Book
) -> None:
    kinds, words = BROKEN[docname]
    with open_page(browser, f"{fixture_site}/{docname}.html") as (_, data):
        problems = check_page(data, fixture_book.pages[docname], fixture_book)
    assert {problem.kind for problem in problems} == kinds, problems
    text = "\n".join(str(problem) for problem in problems)
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"


def _altered(data: PageData, key: str, change: Any) -> PageData:
    altered = copy.deepcopy(data)
    altered.dom[key] = change(altered.dom[key])
    return altered


def test_the_title_check_fails_on_a_wrong_title(good_page: PageData, fixture_book: Book) -> None:
    source = fixture_book.pages["good"]
    assert check_title(good_page, source, fixture_book) == []
    for key, change in (("h1", lambda h1: ["Another chapter"]), ("h1", lambda h1: h1 * 2),
                        ("title", lambda title: "Untitled")):  # fmt: skip
        problems = check_title(_altered(good_page, key, change), source, fixture_book)
        assert [p.kind for p in problems] == ["title"]


def test_the_sidebar_check_fails_on_a_missing_heading_or_page(
    good_page: PageData, fixture_book: Book
) -> None:
    source = fixture_book.pages["good"]
    assert [text for _, text in source.headings] == ["A figure", "A table", "Its `columns`"]
    assert check_sidebar(good_page, source, fixture_book) == []
    changes = (
        ("page_toc", lambda toc: toc[:-1]),  # a heading missing from "On this page"
        ("page_toc", lambda toc: [{**e, "text": e["text"] + "!"} for e in toc]),  # renamed
        ("nav", lambda nav: [n for n in nav if not n["href"].endswith("/raw_tex.html")]),
        ("nav", lambda nav: [{**n, "current": False} for n in nav]),  # this page not marked
    )
    for key, change in changes:
        problems = check_sidebar(_altered(good_page, key, change), source, fixture_book)
        assert [p.kind for p in problems] == ["sidebar"], problems


def test_the_outputs_check_fails_on_a_missing_output(
    good_page: PageData, fixture_book: Book
) -> None:
    source = fixture_book.pages["good"]
    assert (source.output_cells, source.image_outputs, source.html_tables) == (2, 1, 1)
    for what in ("cells", "images", "tables"):
        altered = copy.deepcopy(good_page)
        altered.dom["outputs"][what] -= 1
        assert [p.kind for p in check_outputs(altered, source)] == ["outputs"]


def test_the_launch_check_fails_for_another_repository(
    good_page: PageData, fixture_book: Book
) -> None:
    source = fixture_book.pages["good"]
    config = copy.deepcopy(fixture_book.config)
    config["repository"]["url"] = "https://github.com/someone-else/cnn-course"
    problems = check_launch(good_page, source, config)
    assert [p.kind for p in problems] == ["launch"] * 3  # repository, Colab and Binder
    other = fixture_book.pages["missing_alt"]  # the good page's buttons for another chapter
    assert len(check_launch(good_page, other, fixture_book.config)) == 2


def test_the_layout_check_fails_when_code_does_not_wrap_or_search_shows_twice(
    good_visit: tuple[PageData, PageData],
) -> None:
    """The good page's long line wraps (course.css); undo that rule and it scrolls sideways."""
    wrapped, unwrapped = good_visit
    assert check_layout(wrapped) == []
    problems = check_layout(unwrapped)
    assert [p.kind for p in problems] == ["layout"] and LONG_LINE[:40] in problems[0].message
    assert wrapped.dom["layout"]["search_fields"] == 1
    two_searches = copy.deepcopy(wrapped)
    two_searches.dom["layout"]["search_fields"] = 2  # as with pydata-sphinx-theme's top bar
    assert [p.kind for p in check_layout(two_searches)] == ["layout"]

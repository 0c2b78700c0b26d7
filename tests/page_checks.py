"""What can be wrong with a built book page, judged from what the browser saw on it.

Each check is a plain function of a page's facts (``browser.PageData``, gathered in Chromium) and
of its source (``book_pages.PageSource``), and returns :class:`Problem` s of one kind, so tests can
also feed the checks altered facts and show that each one fails:

========  ==========================================================================================
kind      the page fails when
========  ==========================================================================================
console   a script logs an error or throws (resource errors are the ``request`` kind's business)
request   a request fails, answers >= 400, or goes to another site (the book must work offline)
title     the page lacks exactly one ``<h1>`` equal to its source's title, or ``<title>`` differs
sidebar   the navigation misses a page of the TOC (or its title), the current page is not marked,
          or "On this page" does not list the page's headings (levels 2 and 3) from its source
link      an internal link points at a missing file, or at an anchor the target page lacks
image     an image does not load, or has no alt text (docutils uses the file name as alt text
          when none is given, as for every notebook image output: that counts as none)
math      a formula was not typeset by MathJax, MathJax reported an error, or raw TeX
          (``\\(``, ``$$``, ``$x^2$`` ...) is left in the text outside code
outputs   a notebook page shows fewer code outputs, images or HTML tables than its notebook holds
launch    the Colab/Binder links or the repository button do not point at the chapter's notebook
          in the repository that ``_config.yml`` names
layout    a code cell's input scrolls sideways, the page is wider than the window, or more
          than one search field shows (the theme's duplicate top bar)
========  ==========================================================================================
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse, urlsplit

from book_pages import Book, PageSource, normalise, same_heading
from browser import PageData

KINDS = (
    "console", "request", "title", "sidebar", "link", "image", "math", "outputs", "launch", "layout"
)  # fmt: skip
ALT_HINT = 'give its code cell the metadata {"mystnb": {"image": {"alt": "what the figure shows"}}}'


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a page: its kind (one of :data:`KINDS`) and a sentence."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


class _IdCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


@functools.lru_cache(maxsize=256)
def _ids_in(path: Path) -> frozenset[str]:
    collector = _IdCollector()
    collector.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(collector.ids)


def _local_file(html_dir: Path, url_path: str) -> Path:
    path = html_dir / unquote(url_path).lstrip("/")
    return path / "index.html" if url_path.endswith("/") else path


def check_console(data: PageData) -> list[Problem]:
    return [Problem("console", f"the page logged an error: {text}") for text in data.console]


def check_requests(data: PageData) -> list[Problem]:
    return [Problem("request", f"request failed: {text}") for text in data.failed_requests]


def check_title(data: PageData, source: PageSource, book: Book) -> list[Problem]:
    h1s = data.dom["h1"]
    if not source.title:
        return [Problem("title", f"{source.path.name} has no level-1 heading to be its title")]
    if len(h1s) != 1 or not same_heading(source.title, h1s[0]):
        return [Problem("title", f"the page's <h1> headings are {h1s}, not [{source.title!r}]")]
    suffix = f" \u2014 {book.title}"
    title = data.dom["title"]
    if not title.endswith(suffix) or not same_heading(source.title, title.removesuffix(suffix)):
        expected = f"{source.title}{suffix}"
        return [Problem("title", f"<title> is {title!r}, not {expected!r}")]
    return []


def check_sidebar(data: PageData, source: PageSource, book: Book) -> list[Problem]:
    problems = []
    page_url = data.url.split("#")[0]
    root_url = page_url.removesuffix(f"{source.docname}.html")
    nav = [(link["href"].split("#")[0], link) for link in data.dom["nav"]]
    for i, (docname, page) in enumerate(book.pages.items()):
        entries = [link for href, link in nav if href == urljoin(root_url, f"{docname}.html")]
        if not entries:
            problems.append(Problem("sidebar", f"the navigation has no link to {docname}"))
        elif i > 0 and not any(normalise(e["text"]) == normalise(page.title) for e in entries):
            texts = [e["text"] for e in entries]
            problems.append(
                Problem("sidebar", f"the navigation names {docname} {texts}, not {page.title!r}")
            )
        if docname == source.docname and not any(e["current"] for e in entries):
            problems.append(Problem("sidebar", "the navigation does not mark this page as current"))
    toc = [(entry["level"], entry["text"]) for entry in data.dom["page_toc"]]
    matches = len(toc) == len(source.headings) and all(
        level == got_level and same_heading(text, got)
        for (level, text), (got_level, got) in zip(source.headings, toc, strict=True)
    )
    if not matches:
        problems.append(
            Problem(
                "sidebar",
                f'"On this page" lists {toc}, but {source.path.name} has the headings '
                f"{source.headings}",
            )
        )
    return problems


def check_links(data: PageData, html_dir: Path) -> list[Problem]:
    """Every link to this site names an existing file and, if it has one, an existing anchor."""
    problems = []
    here = urlsplit(data.url)
    for link in data.dom["links"]:
        target = urlsplit(link["href"])
        if target.scheme not in ("http", "https") or target.netloc != here.netloc:
            continue  # another site (not fetched: launch, repository, references) or mailto: ...
        path = _local_file(html_dir, target.path)
        label = f"link {link['raw']!r} ({link['text']!r})"
        if not path.is_file():
            problems.append(Problem("link", f"{label} points at {target.path}, which is missing"))
            continue
        anchor = unquote(target.fragment)
        if not anchor or path.suffix != ".html":
            continue
        ids = set(data.dom["ids"]) if target.path == here.path else _ids_in(path)
        if anchor not in ids:
            problems.append(
                Problem("link", f"{label}: {target.path} has no element with id {anchor!r}")
            )
    return problems


def _looks_like_a_file_name(alt: str, src: str) -> bool:
    name = src.rsplit("/", 1)[-1]
    return alt in (src, name) or bool(re.fullmatch(r"[\w./-]+\.(png|jpe?g|gif|svg|webp)", alt))


def check_images(data: PageData, source: PageSource) -> list[Problem]:
    problems = []
    for image in data.dom["images"]:
        src, alt = image["src"] or "", (image["alt"] or "").strip()
        if not image["loaded"]:
            problems.append(Problem("image", f"image {src} did not load"))
        if not alt or _looks_like_a_file_name(alt, src):
            stem = src.rsplit("/", 1)[-1].split(".")[0]
            where = source.image_cells.get(stem)
            where_text = f", the output of {where}: {ALT_HINT}" if where else ""
            shown = "no alt text" if not alt else "no alt text (only its file name)"
            problems.append(Problem("image", f"image {src} has {shown}{where_text}"))
    return problems


#: Raw TeX left in the text: delimiters, environments, or $...$ holding TeX's special characters.
RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{"
    r"|(?<![\w$])\$(?=\S)[^$\n]{0,200}[\\^_{}][^$\n]{0,200}(?<=\S)\$(?![\w$])"
)


def check_math(data: PageData) -> list[Problem]:
    math = data.dom["math"]
    problems = [Problem("math", f"MathJax did not typeset {text!r}") for text in math["unrendered"]]
    problems += [Problem("math", f"MathJax reported an error: {text}") for text in math["errors"]]
    if math["count"] and not math["mathjax"]:
        problems.append(Problem("math", "the page has formulas but MathJax did not load"))
    for found in RAW_TEX.finditer(math["prose"]):
        context = " ".join(math["prose"][max(0, found.start() - 30) : found.end() + 30].split())
        problems.append(Problem("math", f"raw TeX {found[0]!r} in the text: ...{context}..."))
    return problems


def check_outputs(data: PageData, source: PageSource) -> list[Problem]:
    if not source.is_notebook:
        return []
    shown = data.dom["outputs"]
    wanted = (
        ("code cells with outputs", source.output_cells, shown["cells"]),
        ("image outputs", source.image_outputs, shown["images"]),
        ("HTML tables", source.html_tables, shown["tables"]),
    )
    return [
        Problem("outputs", f"{source.path.name} has {count} {what}, but the page shows {seen}")
        for what, count, seen in wanted
        if seen < count
    ]


def expected_launch_links(config: dict[str, Any], docname: str) -> dict[str, str]:
    """The Colab, Binder and repository URLs a chapter's buttons must have, from ``_config.yml``."""
    repo = config["repository"]
    url = str(repo["url"]).rstrip("/").removesuffix(".git")
    owner_and_name = urlparse(url).path.strip("/")
    branch = repo.get("branch", "main")
    book_path = str(repo.get("path_to_book") or "").strip("/")
    notebook = "/".join(p for p in (book_path, f"{docname}.ipynb") if p not in ("", "."))
    launch = config["launch_buttons"]
    interface = "lab/tree" if launch.get("notebook_interface") == "jupyterlab" else "tree"
    colab, binder = launch["colab_url"].rstrip("/"), launch["binderhub_url"].rstrip("/")
    return {
        "Colab": f"{colab}/github/{owner_and_name}/blob/{branch}/{notebook}",
        "Binder": f"{binder}/v2/gh/{owner_and_name}/{branch}?urlpath={interface}/{notebook}",
        "repository": str(repo["url"]),
    }


def check_launch(data: PageData, source: PageSource, config: dict[str, Any]) -> list[Problem]:
    """The buttons, and every Colab or Binder link in the text, open this chapter's notebook."""
    expected = expected_launch_links(config, source.docname)
    launch, repo = data.dom["launch"], data.dom["repository"]
    problems = []
    if expected["repository"] not in repo:
        problems.append(
            Problem("launch", f"the repository button is {repo}, not {expected['repository']}")
        )
    if not source.is_notebook:
        return problems
    for name in ("Colab", "Binder"):
        if expected[name] not in launch:
            problems.append(
                Problem("launch", f"no {name} button to {expected[name]} (has {launch})")
            )
    # A launch link in the text (a chapter's "open in Colab") must open this chapter too: one
    # copied from another chapter is the mistake this catches.
    kinds = {name: urlparse(expected[name]) for name in ("Colab", "Binder")}
    prefixes = {"Colab": "/github/", "Binder": "/v2/gh/"}
    for link in (link for link in data.dom["links"] if link["href"] not in launch):
        href = urlparse(link["href"])
        for name, want in kinds.items():
            is_launch = href.netloc == want.netloc and href.path.startswith(prefixes[name])
            if is_launch and link["href"] != expected[name]:
                problems.append(
                    Problem("launch", f"{name} link {link['href']} is not {expected[name]}")
                )
    return problems


def check_layout(data: PageData) -> list[Problem]:
    layout = data.dom["layout"]
    problems = [
        Problem("layout", f"code cell input scrolls sideways ({px} px too wide): {line!r}")
        for px, line in layout["wide_inputs"]
    ]
    if layout["page_width"] > layout["window_width"]:
        width, window = layout["page_width"], layout["window_width"]
        problems.append(Problem("layout", f"the page is {width} px wide in a {window} px window"))
    if layout["search_fields"] > 1:
        problems.append(
            Problem(
                "layout",
                f"{layout['search_fields']} search fields are visible: the theme's top bar is "
                "back (html_theme_options: navbar_persistent: [] in _config.yml hides it)",
            )
        )
    return problems


def check_page(data: PageData, source: PageSource, book: Book) -> list[Problem]:
    """Every check on one page."""
    return (
        check_console(data)
        + check_requests(data)
        + check_title(data, source, book)
        + check_sidebar(data, source, book)
        + check_links(data, book.html_dir)
        + check_images(data, source)
        + check_math(data)
        + check_outputs(data, source)
        + check_launch(data, source, book.config)
        + check_layout(data)
    )

"""What a book's sources say its pages must show: the TOC's pages, titles, headings, outputs.

The browser checks (``tests/page_checks.py``) compare what Chromium shows with this, so a page is
held to its own source: the title and the level-2 and level-3 headings of its Markdown (or its
notebook's Markdown cells), and, for a notebook, how many code cells have outputs, how many of
those outputs are images (and which cell made each, for error messages) or HTML tables.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

#: MyST-NB's choice among an output's MIME types for HTML (``nb_mime_priority_overrides`` in
#: ``_config.yml`` drops widget views, so they fall back to ``text/plain``).
MIME_PRIORITY = (
    "application/javascript",
    "text/html",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/markdown",
    "text/latex",
    "text/plain",
)
IMAGE_MIMES = {"image/svg+xml", "image/png", "image/jpeg", "image/gif"}
REMOVED_OUTPUT_TAGS = {"remove-cell", "remove_cell", "remove-output", "remove_output"}


@dataclass
class PageSource:
    """What a page's source file says the page must show."""

    docname: str
    path: Path
    title: str
    headings: list[tuple[int, str]]  # (level, text) of the level-2 and level-3 headings
    is_notebook: bool = False
    output_cells: int = 0  # code cells whose outputs the page must show
    image_outputs: int = 0
    html_tables: int = 0
    image_cells: dict[str, str] = field(default_factory=dict)  # image sha256 -> "code cell N ..."


@dataclass
class Book:
    """A built book: its sources, its TOC, its configuration and its HTML folder."""

    root: Path
    html_dir: Path
    config: dict[str, Any]
    pages: dict[str, PageSource]  # docname -> source, in TOC order; the first is the root

    @classmethod
    def load(cls, root: Path, html_dir: Path) -> Book:
        config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
        pages = {name: page_source(root, name) for name in toc_docnames(root / "_toc.yml")}
        return cls(root, html_dir, config, pages)

    @property
    def title(self) -> str:
        return str(self.config.get("title", ""))


def toc_docnames(toc_file: Path) -> list[str]:
    """Every page a jb-book ``_toc.yml`` lists, in order, the root first, without suffixes."""
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    names = [str(toc["root"])]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(re.sub(r"\.(md|ipynb|rst)$", "", str(entry["file"])))
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [re.sub(r"\.(md|ipynb|rst)$", "", name) for name in names]


def _markdown_headings(text: str) -> list[tuple[int, str]]:
    """ATX headings of a Markdown text, outside code fences and front matter."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":  # front matter
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    headings: list[tuple[int, str]] = []
    fence: str | None = None
    for line in lines:
        marker = re.match(r"^ {0,3}(`{3,}|~{3,}|:{3,})", line)
        if marker:
            run = marker[1]
            if fence is None:
                fence = run
            elif run[0] == fence[0] and len(run) >= len(fence) and not line.strip()[len(run) :]:
                fence = None
            continue
        heading = re.match(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$", line)
        if fence is None and heading:
            headings.append((len(heading[1]), heading[2]))
    return headings


def _chosen_mime(data: dict[str, Any]) -> str | None:
    return next((mime for mime in MIME_PRIORITY if mime in data), None)


def _image_hash(mime: str, content: Any) -> str:
    """The sha256 MyST-NB names an image output's file after (``_images/<sha256>.<ext>``)."""
    text = "".join(content) if isinstance(content, list) else str(content)
    if mime == "image/svg+xml":
        data = os.linesep.join(text.splitlines()).encode("utf-8")
    else:
        data = base64.b64decode(text)
    return hashlib.sha256(data).hexdigest()


def page_source(root: Path, docname: str) -> PageSource:
    """Read what the page ``docname`` of the book in ``root`` must show from its source file."""
    for suffix in (".ipynb", ".md"):
        path = root / f"{docname}{suffix}"
        if path.is_file():
            break
    else:
        raise FileNotFoundError(f"_toc.yml lists {docname}, but {root} has no .ipynb or .md of it")
    if path.suffix == ".md":
        headings = _markdown_headings(path.read_text(encoding="utf-8"))
        titles = [text for level, text in headings if level == 1]
        return PageSource(docname, path, titles[0] if titles else "", _levels_2_3(headings))
    nb = nbformat.read(path, as_version=4)
    headings, source = [], PageSource(docname, path, "", [], is_notebook=True)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings += _markdown_headings(cell.source)
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        outputs = [
            output
            for output in cell.get("outputs", [])
            if not (output.get("output_type") == "stream" and f"remove-{output.name}" in tags)
        ]
        if cell.cell_type != "code" or not outputs or tags & REMOVED_OUTPUT_TAGS:
            continue
        source.output_cells += 1
        for output in outputs:
            mime = _chosen_mime(output.get("data", {}))
            if mime in IMAGE_MIMES:
                source.image_outputs += 1
                label = f"code cell {index} (id {cell.get('id', '?')}) of {path.name}"
                source.image_cells[_image_hash(mime, output.data[mime])] = label
            elif mime == "text/html" and "<table" in "".join(output.data[mime]):
                source.html_tables += 1
    titles = [text for level, text in headings if level == 1]
    source.title, source.headings = (titles[0] if titles else ""), _levels_2_3(headings)
    return source


def _levels_2_3(headings: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(level, text) for level, text in headings if level in (2, 3)]


_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "--", "—": "---"})


def normalise(text: str) -> str:
    """Heading text as rendered: Markdown markup dropped, smart quotes undone, spaces collapsed."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [text](url) -> text
    text = re.sub(r"\{[\w:-]+\}`([^`<]*?)\s*(?:<[^>]*>)?`", r"\1", text)  # {role}`text <target>`
    text = text.replace("`", "").replace("**", "").replace("__", "").replace("\\", "")
    text = re.sub(r"(?<!\w)\*(\S[^*]*)\*", r"\1", text)
    return re.sub(r"\s+", " ", text.translate(_TYPOGRAPHY).replace("…", "...")).strip()


def same_heading(source: str, rendered: str) -> bool:
    if "$" in source:  # typeset maths reads differently as text; its presence is checked
        return True
    return normalise(source) == normalise(rendered)

"""The chapter tables of README.md and book/intro.md agree with the book's table of contents.

A chapter listed under "Chapters" in _toc.yml is ready: both tables link to its notebook under the
notebook's own title, and README marks it "ready". A row for any other chapter links nowhere and
says it is coming.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


class Chapter(NamedTuple):
    number: int
    stem: str
    """The notebook's name without its suffix: ``"01_motivation"``."""
    title: str
    """The notebook's heading without its number: ``"Why convolutions?"``."""


def _toc_chapters() -> dict[int, Chapter]:
    """The chapters in _toc.yml's "Chapters" part, by number, titled by their notebooks."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (part,) = [part for part in toc["parts"] if part["caption"] == "Chapters"]
    chapters: dict[int, Chapter] = {}
    for entry in part["chapters"]:
        path = ROOT / f"{entry['file']}.ipynb"
        cells = json.loads(path.read_text())["cells"]
        heading = "".join(cells[0]["source"]).splitlines()[0]
        match = re.fullmatch(r"# (\d+)\. (.+)", heading)
        assert match, f"{path.name} should open with '# N. Title', not {heading!r}"
        number = int(match.group(1))
        chapters[number] = Chapter(number, path.stem, match.group(2))
    return chapters


def _table_rows(path: Path, header: str) -> dict[int, list[str]]:
    """The cells of each row of the table under ``header`` in ``path``, by chapter number."""
    lines = path.read_text().splitlines()
    start = lines.index(header) + 2  # skip the header and its |---| line
    rows: dict[int, list[str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[int(cells[0])] = cells[1:]
    return rows


CHAPTERS = _toc_chapters()
README = _table_rows(ROOT / "README.md", "| # | chapter | status |")
INTRO = _table_rows(ROOT / "book" / "intro.md", "| # | Chapter | What it covers |")


def test_every_chapter_in_the_toc_has_a_row_in_both_tables() -> None:
    assert set(CHAPTERS) <= set(README), "README.md's chapter table lacks a chapter of _toc.yml"
    assert set(CHAPTERS) <= set(INTRO), "book/intro.md's chapter table lacks a chapter of _toc.yml"


@pytest.mark.parametrize("number", sorted(README))
def test_readme_row_agrees_with_the_toc(number: int) -> None:
    chapter, status = README[number]
    if number in CHAPTERS:
        ready = CHAPTERS[number]
        link = f"[{ready.title}](notebooks/{ready.stem}.ipynb)"
        assert chapter.startswith(link), f"README.md's row {number} should start with {link}"
        assert status == "ready", f"README.md's row {number} is in _toc.yml, so it is ready"
    else:
        assert "](" not in chapter, f"README.md's row {number} links to a chapter not in _toc.yml"
        assert status == "coming", f"README.md's row {number} is not in _toc.yml, so it is coming"


@pytest.mark.parametrize("number", sorted(INTRO))
def test_intro_row_agrees_with_the_toc(number: int) -> None:
    chapter = INTRO[number][0]
    if number in CHAPTERS:
        ready = CHAPTERS[number]
        link = f"{{doc}}`{ready.title} <../notebooks/{ready.stem}>`"
        assert chapter == link, f"book/intro.md's row {number} should be {link}"
    else:
        assert "{doc}" not in chapter, f"book/intro.md's row {number} links to a missing chapter"
        assert chapter.endswith("(coming)"), f"book/intro.md's row {number} should say (coming)"

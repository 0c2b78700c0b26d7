"""The student copies in notebooks/ are what tools/make_student_copies.py makes from solutions/:
up to date, idempotent, without any solution text or hidden test, with the outputs of solution and
check cells cleared, and runnable: an unsolved copy's check cells say "not implemented yet".

(The whole student copy also runs top to bottom in the smoke profile whenever ``pytest`` runs:
pytest collects notebooks/ with nbval, which fails on any cell that raises.)
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from cnncourse.checks import CHAPTERS
from tools.make_student_copies import (
    NOTEBOOKS_DIR,
    SOLUTIONS_DIR,
    main,
    render,
    sources,
    stale_copies,
    student_copy,
    write_copies,
)

SOURCES = sources()
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def read(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def regions(nb: NotebookNode, begin: str, end: str) -> tuple[list[str], str]:
    """The stripped lines inside begin/end regions, and all the text outside them."""
    inside, outside = [], []
    for cell in nb.cells:
        in_region = False
        for line in cell.source.splitlines():
            if begin in line:
                in_region = True
            elif end in line:
                in_region = False
            elif in_region:
                if line.strip():
                    inside.append(line.strip())
            else:
                outside.append(line)
    return inside, "\n".join(outside)


def all_text(nb: NotebookNode) -> str:
    """Every source and every output string of a notebook."""
    parts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for cell in nb.cells:
        parts.append(cell.source)
        walk(cell.get("outputs", []))
    return "\n".join(parts)


def graded(cell: NotebookNode, kind: str) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get(kind))


def test_there_are_sources() -> None:
    assert SOURCES, f"no NN_*.ipynb source in {SOLUTIONS_DIR}"


def test_committed_student_copies_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert stale_copies() == [], "run `uv run --frozen python tools/make_student_copies.py`"
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_generation_is_idempotent_and_detects_stale(tmp_path: Path) -> None:
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copytree(SOLUTIONS_DIR, solutions)
    first = write_copies(solutions, notebooks)
    assert [p.name for p in first] == [p.name for p in SOURCES]
    texts = {p: p.read_bytes() for p in first}
    assert write_copies(solutions, notebooks) == []  # nothing to write the second time
    assert {p: p.read_bytes() for p in first} == texts
    for source in SOURCES:
        assert render(student_copy(read(source))) == render(student_copy(read(source)))
        assert (notebooks / source.name).read_bytes() == (NOTEBOOKS_DIR / source.name).read_bytes()
    target = first[0]
    target.write_text(target.read_text().replace("YOUR CODE HERE", "MY CODE HERE", 1))
    assert stale_copies(solutions, notebooks) == [target]


def test_chapters_argument_copies_only_those_chapters(tmp_path: Path) -> None:
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copytree(SOLUTIONS_DIR, solutions)
    first, second = SOURCES[0], SOURCES[1]
    by_number = write_copies(solutions, notebooks, chapters=[first.stem[:2].lstrip("0")])
    assert [p.name for p in by_number] == [first.name]
    by_name = write_copies(solutions, notebooks, chapters=[second.stem])
    assert [p.name for p in by_name] == [second.name]
    assert sorted(p.name for p in notebooks.iterdir()) == sorted([first.name, second.name])
    assert stale_copies(solutions, notebooks, chapters=[first.stem[:2]]) == []
    assert main(["99_no_such_chapter"]) == 2


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_no_solution_text_left(source: Path) -> None:
    """Every line of every solution region is gone, except lines the chapter also has elsewhere
    (``with torch.no_grad():`` belongs to the chapter as much as to a solution)."""
    src = read(source)
    solution_lines, rest = regions(src, BEGIN, END)
    assert solution_lines, "the source has no solution regions"
    copy_text = all_text(read(NOTEBOOKS_DIR / source.name))
    specific = [line for line in solution_lines if line not in rest]
    assert len(specific) >= len(solution_lines) // 2  # the check below is not vacuous
    leaked = [line for line in specific if line in copy_text]
    assert not leaked, f"solution lines in the student copy: {leaked}"
    assert BEGIN not in copy_text and END not in copy_text


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_hidden_tests_removed(source: Path) -> None:
    hidden, rest = regions(read(source), HIDDEN_BEGIN, HIDDEN_END)
    assert hidden, "the source has no hidden tests (the test would prove nothing)"
    copy_text = all_text(read(NOTEBOOKS_DIR / source.name))
    assert HIDDEN_BEGIN not in copy_text and HIDDEN_END not in copy_text
    assert not [line for line in hidden if line not in rest and line in copy_text]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_only_graded_cells_change(source: Path) -> None:
    src, copy = read(source), read(NOTEBOOKS_DIR / source.name)
    assert len(src.cells) == len(copy.cells)
    for before, after in zip(src.cells, copy.cells, strict=True):
        assert before.metadata == after.metadata
        if graded(before, "solution") or graded(before, "grade"):
            assert after.outputs == [] and after.execution_count == before.execution_count
            if graded(before, "solution"):
                assert 'raise NotImplementedError("replace this line' in after.source
        else:
            assert after == before


def _chapter(source: Path) -> str:
    return source.name[:2]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_metadata_matches_the_checks(source: Path) -> None:
    nb = read(source)
    specs = CHAPTERS[_chapter(source)]
    solutions = [c.metadata.nbgrader for c in nb.cells if graded(c, "solution")]
    checks = [c.metadata.nbgrader for c in nb.cells if graded(c, "grade")]
    assert [m["grade_id"] for m in solutions] == [e.grade_id for e in specs]
    assert [m["points"] for m in checks] == [e.points for e in specs]
    assert all(m["locked"] and not m["solution"] for m in checks)


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_unsolved_copy_runs_and_says_not_implemented(source: Path) -> None:
    """Run the exercise and check cells of a student copy (after the imports chapters make)."""
    chapter = _chapter(source)
    nb = read(NOTEBOOKS_DIR / source.name)
    namespace: dict[str, object] = {}
    exec(  # noqa: S102 - the imports a chapter makes
        "import math\nfrom typing import Any, Callable\nimport torch\n"
        "import torch.nn.functional as F\nfrom torch import Tensor, nn\n"
        f"from cnncourse.checks import ch{chapter}\n",
        namespace,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb.cells:
            if graded(cell, "solution") or graded(cell, "grade"):
                exec(cell.source, namespace)  # noqa: S102 - raises if a cell raises
    lines = out.getvalue().splitlines()
    assert lines == [
        f"✗ {e.name} is not implemented yet: replace the `raise NotImplementedError` line with "
        "your code."
        for e in CHAPTERS[chapter]
    ]

"""Helpers for the autograder tests (tests/test_grader.py, tests/test_grade_chNN.py).

A :class:`Chapter` names a chapter's source notebook (solutions/) and its student copy
(notebooks/). A test reads the source's solution cells by nbgrader ``grade_id``, edits some of
them into typical mistakes (:meth:`Chapter.edited`), writes each submission from the student copy
(:meth:`Chapter.write_submission`) and grades the whole folder in ONE batch through the command
line (:func:`run_grader`, :func:`grade_batch`), as an instructor would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the grader runs with it as its working directory)."""

MATCHES_REFERENCE = " random cases match the reference."
"""How the grader's reason for a correct exercise ends."""


def not_implemented(name: str) -> str:
    """The grader's reason for an exercise whose function still raises NotImplementedError."""
    return (
        f"{name} is not implemented yet: replace the `raise NotImplementedError` line "
        "with your code."
    )


def assert_full_marks(student: Mapping[str, Any], total: int) -> None:
    """A student's scores: ``total`` points, the maximum, and every exercise matched."""
    assert student["total"] == student["max_points"] == total
    for item in student["exercises"].values():
        assert item["reason"].endswith(MATCHES_REFERENCE)


def zero_reasons(student: Mapping[str, Any]) -> dict[str, str]:
    """Assert that a student's total is 0; return the reason of each exercise, by name."""
    assert student["total"] == 0
    return {name: item["reason"] for name, item in student["exercises"].items()}


def assert_case_totals(
    scores: Mapping[str, Any], cases: Mapping[str, tuple[Any, Any, int]], max_points: int
) -> None:
    """Every graded case scored the total its ``(cells, broken exercise, total)`` entry names."""
    assert {name: s["total"] for name, s in scores.items()} == {
        name: total for name, (_, _, total) in cases.items()
    }
    assert all(s["max_points"] == max_points for s in scores.values())


def assert_solution_full_and_stub_zero(
    scores: Mapping[str, Any], points: Mapping[str, int]
) -> None:
    """The ``solution`` case earns every exercise's points; the ``stub`` case earns none."""
    for name, item in scores["solution"]["exercises"].items():
        assert item["points"] == points[name], item["reason"]
        assert item["reason"].endswith(MATCHES_REFERENCE)
    for name, item in scores["stub"]["exercises"].items():
        assert item["points"] == 0
        assert item["reason"].startswith(f"{name} is not implemented yet")


def assert_loses_only_its_exercise(
    scores: Mapping[str, Any],
    cases: Mapping[str, tuple[Any, str, int]],
    points: Mapping[str, int],
    student: str,
) -> None:
    """A wrong answer loses exactly the exercise it breaks, with a one-sentence reason."""
    broken = cases[student][1]
    for name, item in scores[student]["exercises"].items():
        assert item["points"] == (0 if name == broken else points[name]), (student, name, item)
    reason = scores[student]["exercises"][broken]["reason"]
    assert reason.startswith(broken) and reason.endswith(".") and "\n" not in reason


@dataclass(frozen=True)
class Chapter:
    """One chapter's notebooks: ``notebook`` is the file name, e.g. ``"02_convolution.ipynb"``."""

    notebook: str

    @property
    def number(self) -> str:
        """The two-digit chapter number the grader's ``--chapter`` takes, e.g. ``"02"``."""
        return self.notebook[:2]

    @property
    def source(self) -> Path:
        """The source notebook, with the solutions."""
        return ROOT / "solutions" / self.notebook

    @property
    def student(self) -> Path:
        """The committed student copy, with stubs in its solution cells."""
        return ROOT / "notebooks" / self.notebook

    def solved_cells(self) -> dict[str, str]:
        """The solution cells of the source, by grade id."""
        nb = nbformat.read(str(self.source), as_version=4)
        return {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }

    def edited(self, grade_id: str, old: str, new: str) -> str:
        """The source's solution of ``grade_id`` with ``old`` replaced by ``new``.

        Fails when the solution no longer contains ``old``, so a test cannot silently go on
        grading the unchanged (correct) solution after the source was edited.
        """
        source = self.solved_cells()[grade_id]
        assert old in source, f"the solution of {grade_id} no longer contains {old!r}"
        return source.replace(old, new)

    def write_submission(self, folder: Path, name: str, cells: Mapping[str, str]) -> None:
        """Write ``folder/name.ipynb``: the student copy with the given solution cells filled in.

        ``cells`` maps grade ids to sources; solution cells it does not name keep their stubs.
        """
        nb = nbformat.read(str(self.student), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id") in cells:
                cell.source = cells[meta["grade_id"]]
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


def run_grader(
    folder: Path, chapter: Chapter, out: Path, *options: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cnncourse.grading FOLDER --chapter NN --out OUT [OPTIONS]`` from the root.

    Asserts that the grader exits with 0 (its stderr is the failure message) and returns the
    finished process, whose ``stdout`` is the grader's summary. ``timeout`` bounds the whole run.
    """
    run = subprocess.run(
        [sys.executable, "-m", "cnncourse.grading", str(folder), "--chapter", chapter.number,
         "--out", str(out), *options],
        check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run


def load_scores(out: Path) -> dict[str, Any]:
    """The grader's ``scores.json`` in the output folder ``out``."""
    scores: dict[str, Any] = json.loads((out / "scores.json").read_text())
    return scores


def grade_batch(
    tmp_path_factory: pytest.TempPathFactory,
    area: str,
    chapter: Chapter,
    submissions: Mapping[str, Mapping[str, str]],
    *options: str,
    timeout: float = 900,
) -> dict[str, Any]:
    """Write every submission and grade them all in ONE grader run; return the students' scores.

    ``submissions`` maps each submission's name to its solution cells (see
    :meth:`Chapter.write_submission`); the batch runs in a fresh temporary folder named after
    ``area``, with the grader ``options`` (e.g. ``"--timeout", "60"``). Returns the ``students``
    part of ``scores.json``, by submission name.
    """
    root = tmp_path_factory.mktemp(area)
    folder, out = root / "submitted", root / "scores"
    folder.mkdir()
    for name, cells in submissions.items():
        chapter.write_submission(folder, name, cells)
    run_grader(folder, chapter, out, *options, timeout=timeout)
    students: dict[str, Any] = load_scores(out)["students"]
    return students

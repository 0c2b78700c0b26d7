"""Grading chapter 2: full marks for the solutions, zero for the untouched student copy, and a wrong
answer loses exactly its own exercise's points.

Submissions are made in a temporary folder from the committed student copy by filling its solution
cells, and graded in ONE batch through the command line, as an instructor would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "02_convolution.ipynb"
STUDENT = ROOT / "notebooks" / "02_convolution.ipynb"
EX1, EX2, EX3, EX4 = (
    "ex1-conv2d_loops",
    "ex2-output_size",
    "ex3-receptive_field",
    "ex4-conv2d_unfold",
)
NAMES = {
    EX1: "conv2d_loops",
    EX2: "output_size",
    EX3: "receptive_field",
    EX4: "conv2d_unfold",
}
POINTS = {EX1: 4, EX2: 2, EX3: 3, EX4: 3}
TOTAL = sum(POINTS.values())


def solved_cells() -> dict[str, str]:
    """The solution cells of the source, by grade id."""
    nb = nbformat.read(str(SOURCE), as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


def edited(grade_id: str, old: str, new: str) -> str:
    source = solved_cells()[grade_id]
    assert old in source, f"the solution of {grade_id} no longer contains {old!r}"
    return source.replace(old, new)


# (submission name, the exercise it breaks or None, its solution cells)
def submissions() -> dict[str, tuple[str | None, dict[str, str]]]:
    solved = solved_cells()
    return {
        "solution": (None, solved),
        "stub": ("all", {}),
        "wrong_forgot_bias": (
            EX1,
            {**solved, EX1: edited(EX1, " + (0 if bias is None else bias[o])", "")},
        ),
        "wrong_forgot_dilation": (
            EX2,
            {**solved, EX2: edited(EX2, "- dilation * (kernel - 1) - 1", "- (kernel - 1) - 1")},
        ),
        "wrong_no_jump": (EX3, {**solved, EX3: edited(EX3, "jump *= s", "jump *= 1")}),
        "wrong_unfold_ignores_stride": (
            EX4,
            {**solved, EX4: edited(EX4, "padding=padding, stride=stride)", "padding=padding)")},
        ),
    }


def write_submission(folder: Path, name: str, cells: dict[str, str]) -> None:
    nb = nbformat.read(str(STUDENT), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in cells:
            cell.source = cells[meta["grade_id"]]
    nbformat.write(nb, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    area = tmp_path_factory.mktemp("grading_ch02")
    folder, out = area / "submitted", area / "scores"
    folder.mkdir()
    for name, (_, cells) in submissions().items():
        write_submission(folder, name, cells)
    run = subprocess.run(
        [sys.executable, "-m", "cnncourse.grade", str(folder), "--chapter", "02",
         "--out", str(out), "--timeout", "60"],
        check=False, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads((out / "scores.json").read_text())["students"]


def test_solution_gets_full_marks(graded: dict[str, Any]) -> None:
    student = graded["solution"]
    assert student["total"] == student["max_points"] == TOTAL
    for item in student["exercises"].values():
        assert item["reason"].endswith(" random cases match the reference.")


def test_untouched_student_copy_gets_zero(graded: dict[str, Any]) -> None:
    student = graded["stub"]
    assert student["total"] == 0
    for name, item in student["exercises"].items():
        assert "is not implemented yet" in item["reason"], (name, item["reason"])


REASONS = {  # what the one-sentence reason of the broken exercise must contain
    "wrong_forgot_bias": "conv2d_loops returned wrong values for input (",
    "wrong_forgot_dilation": "; expected",
    "wrong_no_jump": "; expected",
    # the stride is ignored, so the result cannot be reshaped to the expected output size
    "wrong_unfold_ignores_stride": "conv2d_unfold raised RuntimeError (shape",
}


@pytest.mark.parametrize("name", list(REASONS))
def test_wrong_answer_loses_exactly_its_exercise(graded: dict[str, Any], name: str) -> None:
    broken, _ = submissions()[name]
    assert broken is not None
    student = graded[name]
    assert student["total"] == TOTAL - POINTS[broken]
    for exercise, item in student["exercises"].items():
        if exercise == NAMES[broken]:
            assert item["points"] == 0
            assert item["reason"].endswith(".") and REASONS[name] in item["reason"], item["reason"]
        else:
            assert item["points"] == item["max_points"], (name, exercise, item["reason"])

"""The autograder on chapter 3: full marks for the solutions, zero for the untouched student copy,
and exactly the broken exercise's points lost for each wrong answer, in ONE grading batch run
through the command line as an instructor would run it.

Every submission is made in a temporary folder from the committed student copy by filling its
solution cells (hostile submissions are tested once, for chapter 1, in tests/test_grader.py).
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
SOURCE = ROOT / "solutions" / "03_pooling.ipynb"
STUDENT = ROOT / "notebooks" / "03_pooling.ipynb"
EX1, EX2, EX3, EX4 = (
    "ex1-max_pool2d",
    "ex2-max_pool2d_backward",
    "ex3-global_avg_pool",
    "ex4-invariance_error",
)
NAMES = {
    EX1: "max_pool2d",
    EX2: "max_pool2d_backward",
    EX3: "global_avg_pool",
    EX4: "invariance_error",
}
POINTS = {EX1: 2, EX2: 3, EX3: 1, EX4: 2}


def solved_cells() -> dict[str, str]:
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


def write_submission(folder: Path, name: str, cells: dict[str, str]) -> None:
    nb = nbformat.read(str(STUDENT), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in cells:
            cell.source = cells[meta["grade_id"]]
    nbformat.write(nb, str(folder / f"{name}.ipynb"))


# name: (changed solution cells, the exercises that must lose their points)
WRONG: dict[str, tuple[dict[str, tuple[str, str]], set[str]]] = {
    "wrong_average_instead_of_max": ({EX1: (".amax(dim=(-2, -1))", ".mean(dim=(-2, -1))")}, {EX1}),
    "wrong_overwrites_gradients": ({EX2: ("grad.scatter_add_(", "grad.scatter_(")}, {EX2}),
    "wrong_keepdim_and_circular": (
        {
            EX3: ("x.mean(dim=(2, 3))", "x.mean(dim=(2, 3), keepdim=True)"),
            EX4: ("F.pad(images, (dx, -dx, dy, -dy))", "torch.roll(images, (dy, dx), (-2, -1))"),
        },
        {EX3, EX4},
    ),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    area = tmp_path_factory.mktemp("grading03")
    folder, out = area / "submitted", area / "scores"
    folder.mkdir()
    solved = solved_cells()
    write_submission(folder, "solution", solved)
    write_submission(folder, "stub", {})
    for name, (changes, _) in WRONG.items():
        cells = dict(solved)
        for grade_id, (old, new) in changes.items():
            cells[grade_id] = edited(grade_id, old, new)
        write_submission(folder, name, cells)
    run = subprocess.run(
        [sys.executable, "-m", "cnncourse.grade", str(folder), "--chapter", "03",
         "--out", str(out), "--timeout", "30"],
        check=False, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads((out / "scores.json").read_text())["students"]


def test_solution_full_marks(batch: dict[str, Any]) -> None:
    student = batch["solution"]
    assert student["total"] == student["max_points"] == sum(POINTS.values()) == 8
    for item in student["exercises"].values():
        assert item["reason"].endswith(" random cases match the reference.")


def test_stub_zero(batch: dict[str, Any]) -> None:
    student = batch["stub"]
    assert student["total"] == 0
    for name, item in student["exercises"].items():
        assert item["reason"] == (
            f"{name} is not implemented yet: replace the `raise NotImplementedError` line "
            "with your code."
        )


@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_answers_lose_exactly_their_points(batch: dict[str, Any], name: str) -> None:
    broken = {NAMES[g] for g in WRONG[name][1]}
    student = batch[name]
    assert student["total"] == 8 - sum(POINTS[g] for g in WRONG[name][1])
    for exercise, item in student["exercises"].items():
        if exercise in broken:
            assert item["points"] == 0, (name, exercise)
            assert "; expected" in item["reason"] or "entries differ" in item["reason"], item
        else:
            assert item["points"] == item["max_points"], (name, exercise, item["reason"])

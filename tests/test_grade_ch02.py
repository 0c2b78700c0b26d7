"""Grading chapter 2: full marks for the solutions, zero for the untouched student copy, and a wrong
answer loses exactly its own exercise's points.

Submissions are made in a temporary folder from the committed student copy by filling its solution
cells, and graded in ONE batch through the command line, as an instructor would run it.
"""

from __future__ import annotations

from typing import Any

import pytest
from grading import Chapter, assert_full_marks, grade_batch, zero_reasons

CHAPTER = Chapter("02_convolution.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3, EX4 = (
    "ex1-conv2d_loops",
    "ex2-output_size",
    "ex3-count_macs",
    "ex4-conv2d_unfold",
)
NAMES = {
    EX1: "conv2d_loops",
    EX2: "output_size",
    EX3: "count_macs",
    EX4: "conv2d_unfold",
}
POINTS = {EX1: 4, EX2: 2, EX3: 3, EX4: 3}
TOTAL = sum(POINTS.values())


# (submission name, the exercise it breaks or None, its solution cells)
def submissions() -> dict[str, tuple[str | None, dict[str, str]]]:
    solved = CHAPTER.solved_cells()
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
        "wrong_ignores_groups": (
            EX3,
            {**solved, EX3: edited(EX3, "(layer.in_channels // layer.groups)", "layer.in_channels")},
        ),
        "wrong_unfold_ignores_stride": (
            EX4,
            {**solved, EX4: edited(EX4, "padding=padding, stride=stride)", "padding=padding)")},
        ),
        "forbidden_f_conv2d": (
            EX1,
            {
                **solved,
                EX1: "def conv2d_loops(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
                "    return F.conv2d(x, weight, bias, stride=stride, padding=padding, "
                "dilation=dilation)\n",
            },
        ),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cells = {name: filled for name, (_, filled) in submissions().items()}
    return grade_batch(tmp_path_factory, "grading_ch02", CHAPTER, cells, "--timeout", "60")


def test_solution_gets_full_marks(graded: dict[str, Any]) -> None:
    assert_full_marks(graded["solution"], TOTAL)


def test_untouched_student_copy_gets_zero(graded: dict[str, Any]) -> None:
    for name, reason in zero_reasons(graded["stub"]).items():
        assert "is not implemented yet" in reason, (name, reason)


REASONS = {  # what the one-sentence reason of the broken exercise must contain
    "wrong_forgot_bias": "conv2d_loops returned wrong values for input (",
    "wrong_forgot_dilation": "; expected",
    "wrong_ignores_groups": "count_macs returned",
    # the stride is ignored, so the result cannot be reshaped to the expected output size
    "wrong_unfold_ignores_stride": "conv2d_unfold raised RuntimeError (shape",
    # the guard's sentence, as in the notebook's check, from inside the grader's sandbox
    "forbidden_f_conv2d": "conv2d_loops called torch's convolution (aten.convolution",
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

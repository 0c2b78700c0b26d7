"""The autograder on chapter 5: full marks for the solutions, zero for the untouched student copy,
and exactly the broken exercise's points lost for each wrong answer. One grader batch, run through
the command line as an instructor would run it.
"""

from __future__ import annotations

from typing import Any

import pytest
from grading import (
    Chapter,
    assert_case_totals,
    assert_loses_only_its_exercise,
    assert_solution_full_and_stub_zero,
    grade_batch,
)

CHAPTER = Chapter("05_architectures.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3 = "ex1-lenet5", "ex2-collect_activations", "ex3-receptive_field"
POINTS = {"lenet5_logits": 3, "collect_activations": 2, "receptive_field": 3}


# student -> (solution cells, the exercise that is wrong or None, expected total)
CASES: dict[str, tuple[dict[str, str], str | None, int]] = {}


def _cases() -> dict[str, tuple[dict[str, str], str | None, int]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None, 8),
        "stub": ({}, None, 0),
        "wrong_padding": (
            {
                **solved,
                EX1: edited(
                    EX1,
                    "nn.Conv2d(in_channels, 6, kernel_size=5)",
                    "nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)",
                ),
            },
            "lenet5_logits",
            5,
        ),
        "wrong_no_copy": (
            {**solved, EX2: edited(EX2, "output.detach().clone()", "output.detach()")},
            "collect_activations",
            6,
        ),
        "wrong_no_jump": (
            {
                **solved,
                EX3: edited(EX3, "(kernel - 1) * dilation * jump", "(kernel - 1) * dilation"),
            },
            "receptive_field",
            5,
        ),
    }


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    CASES.update(_cases())
    cells = {name: filled for name, (filled, _, _) in CASES.items()}
    return grade_batch(tmp_path_factory, "grading05", CHAPTER, cells, "--timeout", "60")


def test_totals(scores: dict[str, Any]) -> None:
    assert_case_totals(scores, CASES, 8)


def test_solution_full_marks_and_stub_zero(scores: dict[str, Any]) -> None:
    assert_solution_full_and_stub_zero(scores, POINTS)


@pytest.mark.parametrize("student", ["wrong_padding", "wrong_no_copy", "wrong_no_jump"])
def test_wrong_answers_lose_exactly_their_exercise(scores: dict[str, Any], student: str) -> None:
    assert_loses_only_its_exercise(scores, CASES, POINTS, student)

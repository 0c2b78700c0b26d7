"""The autograder on chapter 8: full marks for the solutions, zero for the untouched student copy,
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

CHAPTER = Chapter("08_gpu_training.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3 = "ex1-median_time", "ex2-accumulated_gradients", "ex3-allreduce_mean"
POINTS = {"median_time": 4, "accumulated_gradients": 3, "allreduce_mean": 3}


# student -> (solution cells, the exercise that is wrong or None, expected total)
CASES: dict[str, tuple[dict[str, str], str | None, int]] = {}


def _cases() -> dict[str, tuple[dict[str, str], str | None, int]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None, 10),
        "stub": ({}, None, 0),
        "wrong_no_sync_after": (
            {
                **solved,
                EX1: edited(EX1, "        synchronize()  # wait for the work just queued\n", ""),
            },
            "median_time",
            6,
        ),
        "wrong_equal_weights": (
            {
                **solved,
                EX2: edited(
                    EX2,
                    "* (len(x) / len(images))",
                    "/ -(-len(images) // micro_batch)",
                ),
            },
            "accumulated_gradients",
            7,
        ),
        "wrong_plain_average": (
            {
                **solved,
                EX3: edited(EX3, "sum(count * grads[index]", "sum(grads[index]").replace(
                    "/ total", "/ len(counts)"
                ),
            },
            "allreduce_mean",
            7,
        ),
    }


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    CASES.update(_cases())
    cells = {name: filled for name, (filled, _, _) in CASES.items()}
    return grade_batch(tmp_path_factory, "grading08", CHAPTER, cells, "--timeout", "120")


def test_totals(scores: dict[str, Any]) -> None:
    assert_case_totals(scores, CASES, 10)


def test_solution_full_marks_and_stub_zero(scores: dict[str, Any]) -> None:
    assert_solution_full_and_stub_zero(scores, POINTS)


@pytest.mark.parametrize(
    "student", ["wrong_no_sync_after", "wrong_equal_weights", "wrong_plain_average"]
)
def test_wrong_answers_lose_exactly_their_exercise(scores: dict[str, Any], student: str) -> None:
    assert_loses_only_its_exercise(scores, CASES, POINTS, student)


def test_the_missing_synchronize_is_named(scores: dict[str, Any]) -> None:
    reason = scores["wrong_no_sync_after"]["exercises"]["median_time"]["reason"]
    assert "call synchronize() after fn()" in reason

"""The autograder on chapter 6: full marks for the solutions, zero for the untouched student copy,
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

CHAPTER = Chapter("06_resnets.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3 = "ex1-basic_block", "ex2-resnet_param_count", "ex3-lesion_accuracies"
POINTS = {"basic_block": 4, "resnet_param_count": 3, "lesion_accuracies": 3}


# student -> (solution cells, the exercise that is wrong or None, expected total)
CASES: dict[str, tuple[dict[str, str], str | None, int]] = {}


def _cases() -> dict[str, tuple[dict[str, str], str | None, int]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None, 10),
        "stub": ({}, None, 0),
        "wrong_no_relu": (
            {**solved, EX1: edited(EX1, "return F.relu(out + identity)", "return out + identity")},
            "basic_block",
            6,
        ),
        "wrong_option_b": (
            {**solved, EX2: edited(EX2, 'shortcut == "B" and reshapes', 'shortcut == "B"')},
            "resnet_param_count",
            7,
        ),
        "wrong_package_switch": (
            {
                **solved,
                EX3: edited(
                    EX3,
                    "            x = model.stem(images)\n",
                    "            block.lesioned = True\n"
                    "            block.lesioned = False\n"
                    "            x = model.stem(images)\n",
                ),
            },
            "lesion_accuracies",
            7,
        ),
    }


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    CASES.update(_cases())
    cells = {name: filled for name, (filled, _, _) in CASES.items()}
    return grade_batch(tmp_path_factory, "grading06", CHAPTER, cells, "--timeout", "120")


def test_totals(scores: dict[str, Any]) -> None:
    assert_case_totals(scores, CASES, 10)


def test_solution_full_marks_and_stub_zero(scores: dict[str, Any]) -> None:
    assert_solution_full_and_stub_zero(scores, POINTS)


@pytest.mark.parametrize("student", ["wrong_no_relu", "wrong_option_b", "wrong_package_switch"])
def test_wrong_answers_lose_exactly_their_exercise(scores: dict[str, Any], student: str) -> None:
    assert_loses_only_its_exercise(scores, CASES, POINTS, student)


def test_the_lesion_switch_is_named(scores: dict[str, Any]) -> None:
    reason = scores["wrong_package_switch"]["exercises"]["lesion_accuracies"]["reason"]
    assert "the course's lesion switch" in reason

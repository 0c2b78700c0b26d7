"""The autograder on chapter 9: full marks for the solutions, zero for the untouched student copy,
exactly the broken exercise's points lost for each wrong answer, and torchvision's transforms
rejected inside ``preprocess``. One grader batch, run through the command line as an instructor
would run it.
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

CHAPTER = Chapter("09_transfer.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3 = "ex1-preprocess", "ex2-finetune_step", "ex3-top_k"
POINTS = {"preprocess": 3, "finetune_step": 4, "top_k": 3}
TORCHVISION_ROUTE = '''def preprocess(image: Image.Image, size: int, mean, std) -> torch.Tensor:
    from torchvision import transforms as T
    pipeline = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])
    return pipeline(image.convert("RGB"))
'''

# student -> (solution cells, the exercise that is wrong or None, expected total)
CASES: dict[str, tuple[dict[str, str], str | None, int]] = {}


def _cases() -> dict[str, tuple[dict[str, str], str | None, int]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None, 10),
        "stub": ({}, None, 0),
        "torchvision_route": ({**solved, EX1: TORCHVISION_ROUTE}, "preprocess", 7),
        "wrong_no_freeze": (
            {**solved, EX2: edited(EX2, "parameter.requires_grad_(not any(",
                                   "parameter.requires_grad_(True or not any(")},
            "finetune_step",
            6,
        ),
        "wrong_overflow": (
            {**solved, EX3: edited(EX3, "shifted = logits - logits.max(dim=1, keepdim=True).values",
                                   "shifted = logits")},
            "top_k",
            7,
        ),
    }


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    CASES.update(_cases())
    cells = {name: filled for name, (filled, _, _) in CASES.items()}
    return grade_batch(tmp_path_factory, "grading09", CHAPTER, cells, "--timeout", "60")


def test_totals(scores: dict[str, Any]) -> None:
    assert_case_totals(scores, CASES, 10)


def test_solution_full_marks_and_stub_zero(scores: dict[str, Any]) -> None:
    assert_solution_full_and_stub_zero(scores, POINTS)


@pytest.mark.parametrize("student", ["torchvision_route", "wrong_no_freeze", "wrong_overflow"])
def test_wrong_answers_lose_exactly_their_exercise(scores: dict[str, Any], student: str) -> None:
    assert_loses_only_its_exercise(scores, CASES, POINTS, student)


def test_the_torchvision_route_scores_nothing_and_the_guard_says_why(
    scores: dict[str, Any],
) -> None:
    """The sandboxed worker loads torchvision before its audit hook blocks ctypes.dlopen, so a
    submission's own ``import torchvision`` works and the guard's sentence names the route, as
    in the notebook (tests/test_checks_ch09.py); before that, the import failed with
    "operator torchvision::nms does not exist"."""
    reason = scores["torchvision_route"]["exercises"]["preprocess"]["reason"]
    assert "preprocess called torchvision's transforms" in reason
    assert "this exercise asks you to" in reason and "does not exist" not in reason

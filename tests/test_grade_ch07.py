"""The autograder on chapter 7: full marks for the solutions, zero for the untouched student copy,
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

CHAPTER = Chapter("07_augmentation.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3, EX4 = "ex1-pad_crop", "ex2-mixup_batch", "ex3-cutmix_box", "ex4-stream_channel_stats"
POINTS = {"pad_crop": 2, "mixup_batch": 3, "cutmix_box": 3, "stream_channel_stats": 2}


# student -> (solution cells, the exercise that is wrong or None, expected total)
CASES: dict[str, tuple[dict[str, str], str | None, int]] = {}


def _cases() -> dict[str, tuple[dict[str, str], str | None, int]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None, 10),
        "stub": ({}, None, 0),
        "wrong_crop_axes": (
            {**solved, EX1: edited(EX1, "for i, (top, left) in", "for i, (left, top) in")},
            "pad_crop",
            8,
        ),
        "wrong_unmixed_labels": (
            {
                **solved,
                EX2: edited(
                    EX2,
                    "return mixed, w.view(-1, 1) * targets + (1 - w.view(-1, 1)) * targets[perm]",
                    "return mixed, targets",
                ),
            },
            "mixup_batch",
            7,
        ),
        "wrong_unclipped_area": (
            {
                **solved,
                EX3: edited(
                    EX3,
                    "weights = 1 - (boxes[:, 2] * boxes[:, 3]).double() / (height * width)",
                    "weights = 1 - lam",
                ),
            },
            "cutmix_box",
            7,
        ),
        "wrong_gathered_batches": (
            {
                **solved,
                EX4: edited(
                    EX4,
                    "    for batch in batches:\n",
                    "    for batch in [torch.cat(list(batches))]:\n",
                ),
            },
            "stream_channel_stats",
            8,
        ),
    }


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    CASES.update(_cases())
    cells = {name: filled for name, (filled, _, _) in CASES.items()}
    return grade_batch(tmp_path_factory, "grading07", CHAPTER, cells, "--timeout", "120")


def test_totals(scores: dict[str, Any]) -> None:
    assert_case_totals(scores, CASES, 10)


def test_solution_full_marks_and_stub_zero(scores: dict[str, Any]) -> None:
    assert_solution_full_and_stub_zero(scores, POINTS)


@pytest.mark.parametrize(
    "student",
    ["wrong_crop_axes", "wrong_unmixed_labels", "wrong_unclipped_area", "wrong_gathered_batches"],
)
def test_wrong_answers_lose_exactly_their_exercise(scores: dict[str, Any], student: str) -> None:
    assert_loses_only_its_exercise(scores, CASES, POINTS, student)


def test_gathering_the_batches_is_named(scores: dict[str, Any]) -> None:
    reason = scores["wrong_gathered_batches"]["exercises"]["stream_channel_stats"]["reason"]
    assert "torch's concatenation" in reason

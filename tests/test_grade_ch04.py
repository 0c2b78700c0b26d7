"""The autograder on chapter 4: full marks for the solutions, zero for the untouched student copy,
and exactly the broken exercise's points lost for each typical wrong answer, in ONE graded batch.

Every submission is made in a temporary folder from the committed student copy by filling its
solution cells with the source's solutions, some of them edited into a typical mistake.
"""

from __future__ import annotations

from typing import Any

import pytest
from grading import Chapter, grade_batch

CHAPTER = Chapter("04_first_cnn.ipynb")
edited = CHAPTER.edited
EX1, EX2, EX3, EX4 = (
    "ex1-train_steps",
    "ex2-evaluate_model",
    "ex3-batch_norm_2d",
    "ex4-cross_entropy",
)
POINTS = {"train_steps": 3, "evaluate_model": 2, "batch_norm_2d": 3, "cross_entropy": 2}


# submission name -> (solution cells, the exercise it breaks or None)
def submissions() -> dict[str, tuple[dict[str, str], str | None]]:
    solved = CHAPTER.solved_cells()
    return {
        "solution": (solved, None),
        "stub": ({}, "all"),
        "no_zero_grad": (
            {**solved, EX1: edited(EX1, "optimizer.zero_grad()", "pass")},
            "train_steps",
        ),
        "batch_mean_loss": (
            {
                **solved,
                EX2: edited(
                    EX2, ".item() * len(labels)", ".item() * len(labels) / len(labels)"
                ).replace("total_loss / count", "total_loss / len(loader)"),
            },
            "evaluate_model",
        ),
        "biased_running_var": (
            {**solved, EX3: edited(EX3, "var * n / (n - 1)", "var")},
            "batch_norm_2d",
        ),
        "naive_softmax": (
            {
                **solved,
                EX4: edited(EX4, "logits - logits.max(dim=1, keepdim=True).values", "logits"),
            },
            "cross_entropy",
        ),
        "forbidden_f_cross_entropy": (
            {**solved, EX4: "def cross_entropy(logits, targets):\n    return F.cross_entropy(logits, targets)\n"},
            "cross_entropy",
        ),
    }


def test_the_forbidden_route_gets_the_guards_sentence(graded: dict[str, Any]) -> None:
    """F.cross_entropy inside cross_entropy is named by the guard, in the sandbox as in the notebook."""
    reason = graded["forbidden_f_cross_entropy"]["exercises"]["cross_entropy"]["reason"]
    assert "cross_entropy called torch's cross-entropy or log-softmax" in reason, reason
    assert "this exercise asks you to" in reason


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cells = {name: filled for name, (filled, _) in submissions().items()}
    return grade_batch(tmp_path_factory, "grading04", CHAPTER, cells, "--timeout", "60")


def test_every_submission_gets_its_expected_points(graded: dict[str, Any]) -> None:
    expected = submissions()
    assert sorted(graded) == sorted(expected)
    for student, (_, broken) in expected.items():
        exercises = graded[student]["exercises"]
        assert {name: item["max_points"] for name, item in exercises.items()} == POINTS
        for name, item in exercises.items():
            lost = broken in ("all", name)
            assert item["points"] == (0 if lost else POINTS[name]), (student, name, item["reason"])
        total = sum(POINTS.values()) - (
            sum(POINTS.values()) if broken == "all" else POINTS.get(broken or "", 0)
        )
        assert graded[student]["total"] == total


def test_reasons_name_the_mistake(graded: dict[str, Any]) -> None:
    def reason(student: str, exercise: str) -> str:
        return str(graded[student]["exercises"][exercise]["reason"])

    assert reason("solution", "train_steps").endswith(" random cases match the reference.")
    assert "is not implemented yet" in reason("stub", "cross_entropy")
    assert "zero the gradients" in reason("no_zero_grad", "train_steps")
    assert "weight each by its batch size" in reason("batch_mean_loss", "evaluate_model")
    assert "unbiased batch variance" in reason("biased_running_var", "batch_norm_2d")
    assert "log-sum-exp" in reason("naive_softmax", "cross_entropy")

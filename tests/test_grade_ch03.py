"""The autograder on chapter 3: full marks for the solutions, zero for the untouched student copy,
and exactly the broken exercise's points lost for each wrong answer, in ONE grading batch run
through the command line as an instructor would run it.

Every submission is made in a temporary folder from the committed student copy by filling its
solution cells (hostile submissions are tested once, for chapter 1, in tests/test_grader.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from grading import Chapter, assert_full_marks, grade_batch, not_implemented, zero_reasons

CHAPTER = Chapter("03_pooling.ipynb")
EX1, EX2, EX3, EX4 = (
    "ex1-max_pool2d",
    "ex2-max_pool2d_backward",
    "ex3-global_avg_pool",
    "ex4-adaptive_avg_pool2d",
)
NAMES = {
    EX1: "max_pool2d",
    EX2: "max_pool2d_backward",
    EX3: "global_avg_pool",
    EX4: "adaptive_avg_pool2d",
}
POINTS = {EX1: 2, EX2: 3, EX3: 1, EX4: 2}


# name: (changed solution cells, the exercises that must lose their points)
WRONG: dict[str, tuple[dict[str, tuple[str, str]], set[str]]] = {
    "wrong_average_instead_of_max": ({EX1: (".amax(dim=(-2, -1))", ".mean(dim=(-2, -1))")}, {EX1}),
    "wrong_overwrites_gradients": ({EX2: ("grad.scatter_add_(", "grad.scatter_(")}, {EX2}),
    "wrong_keepdim_and_floor": (
        {
            EX3: ("x.mean(dim=(2, 3))", "x.mean(dim=(2, 3), keepdim=True)"),
            EX4: ("-(-(i + 1) * h // out_h)", "max(i * h // out_h + 1, (i + 1) * h // out_h)"),
        },
        {EX3, EX4},
    ),
}


# the shortcuts each exercise forbids, written in as a learner might, and the guard's sentence
FORBIDDEN_CELLS = {
    EX1: "def max_pool2d(x, kernel_size, stride):\n    return F.max_pool2d(x, kernel_size, stride)\n",
    EX2: "def max_pool2d_backward(x, grad_output, kernel_size, stride):\n"
    "    x = x.detach().requires_grad_(True)\n"
    "    y = torch.nn.functional.max_pool2d(x, kernel_size, stride)\n"
    "    y.backward(grad_output)\n"
    "    return x.grad\n",
    EX3: "def global_avg_pool(x):\n    return F.adaptive_avg_pool2d(x, 1).flatten(1)\n",
}
FORBIDDEN_REASONS = {
    "max_pool2d": "max_pool2d called torch's max pooling (aten.max_pool2d",
    "max_pool2d_backward": "max_pool2d_backward called torch's max pooling (aten.max_pool2d",
    "global_avg_pool": "global_avg_pool called torch's average pooling (torch.nn.functional.adaptive_avg_pool2d",
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    solved = CHAPTER.solved_cells()
    cells: dict[str, dict[str, str]] = {"solution": solved, "stub": {}}
    cells["forbidden_routes"] = {**solved, **FORBIDDEN_CELLS}
    for name, (changes, _) in WRONG.items():
        cells[name] = dict(solved)
        for grade_id, (old, new) in changes.items():
            cells[name][grade_id] = CHAPTER.edited(grade_id, old, new)
    return grade_batch(
        tmp_path_factory, "grading03", CHAPTER, cells, "--timeout", "30", timeout=600
    )


def test_solution_full_marks(batch: dict[str, Any]) -> None:
    assert sum(POINTS.values()) == 8
    assert_full_marks(batch["solution"], 8)


def test_stub_zero(batch: dict[str, Any]) -> None:
    for name, reason in zero_reasons(batch["stub"]).items():
        assert reason == not_implemented(name)


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


def test_forbidden_routes_get_the_guards_sentence(batch: dict[str, Any]) -> None:
    """Inside the grader's sandbox, as in the notebook's check, each shortcut scores nothing and
    its reason is the guard's one sentence naming the route."""
    student = batch["forbidden_routes"]
    assert student["total"] == 8 - sum(POINTS[g] for g in FORBIDDEN_CELLS)
    for exercise, expected in FORBIDDEN_REASONS.items():
        item = student["exercises"][exercise]
        assert item["points"] == 0 and expected in item["reason"], item
        assert "this exercise asks you to" in item["reason"], item
    assert student["exercises"]["adaptive_avg_pool2d"]["points"] == 2

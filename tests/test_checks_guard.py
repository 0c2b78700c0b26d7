"""The shared guard (cnncourse.checks.guard): the course's own solutions pass it, every Python
route to a forbidden operator is caught, catching its exception does not help, it leaves nothing
switched on behind it, and its verdict reaches the grader as the same one sentence.

Each exercise's forbidden shortcuts are tested in its chapter's tests/test_checks_chNN.py.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.checks import CHAPTERS, check
from cnncourse.checks.core import error_sentence
from cnncourse.checks.guard import (
    AUTOGRAD,
    CONVOLUTION,
    MODEL_FORWARD,
    ForbiddenRoute,
    Guard,
    Route,
)

ROOT = Path(__file__).resolve().parent.parent
PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
PREAMBLE += "from torch import nn\n"
"""What the grader's worker runs before a submission's solution cells."""

CONV_GUARD = Guard("f", "write the loops yourself", (CONVOLUTION,))
SENTENCE = "f called torch's convolution (aten.convolution); this exercise asks you to write the "
SENTENCE += "loops yourself."


def _solution_namespace(chapter: str) -> dict[str, Any]:
    """The solution cells of solutions/NN_*.ipynb, run after the worker's preamble."""
    (path,) = (ROOT / "solutions").glob(f"{chapter}_*.ipynb")
    namespace: dict[str, Any] = {"__name__": "__solutions__"}
    exec(PREAMBLE, namespace)  # noqa: S102 - the course's own solutions
    for cell in nbformat.read(str(path), as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_the_reference_solutions_pass_under_the_guard(chapter: str) -> None:
    namespace = _solution_namespace(chapter)
    for exercise in CHAPTERS[chapter]:
        result = check(exercise, namespace[exercise.name], seed=3)
        assert result.passed, result.message


@pytest.mark.parametrize(
    "route",
    [
        lambda x, w: F.conv2d(x, w),
        lambda x, w: torch.conv2d(x, w),
        lambda x, w: torch.nn.grad.conv2d_input((1, 3, 8, 8), w.transpose(0, 1), x),
        lambda x, w: nn.Conv2d(2, 3, 3, bias=False, dtype=torch.float64)(x),
        lambda x, w: F.conv_transpose2d(x, w.transpose(0, 1)),
        lambda x, w: F.conv2d(x.to("meta"), w.to("meta")),
    ],
    ids=["F.conv2d", "torch.conv2d", "grad.conv2d_input", "nn.Conv2d", "transpose", "meta"],
)
def test_every_python_route_to_an_operator_is_caught(route: Any) -> None:
    x, w = torch.randn(1, 2, 6, 6, dtype=torch.float64), torch.randn(3, 2, 3, 3).double()
    with pytest.raises(ForbiddenRoute) as caught:
        CONV_GUARD.call(route, (x, w))
    assert str(caught.value).startswith("f called torch's convolution (aten.convolution")
    assert str(caught.value).endswith("); this exercise asks you to write the loops yourself.")


def test_catching_the_guards_exception_does_not_help() -> None:
    def sly(x: torch.Tensor) -> torch.Tensor:
        try:
            return F.conv2d(x, torch.ones(1, 1, 1, 1, dtype=x.dtype))
        except Exception:  # noqa: BLE001 - the point of the test
            return x.clone()

    with pytest.raises(ForbiddenRoute, match="aten.convolution"):
        CONV_GUARD.call(sly, (torch.ones(1, 1, 2, 2, dtype=torch.float64),))


def test_a_function_that_takes_no_forbidden_route_runs_unchanged() -> None:
    def honest(x: torch.Tensor) -> torch.Tensor:
        return (x * 2).sum()

    x = torch.arange(4.0)
    assert CONV_GUARD.call(honest, (x,)).item() == 12.0
    with pytest.raises(ZeroDivisionError):
        CONV_GUARD.call(lambda x: 1 / 0, (x,))


def test_the_guard_leaves_nothing_switched_on() -> None:
    guard = Guard("f", "do it", (CONVOLUTION, AUTOGRAD, Route("sums", python=("torch.sum",))))
    before = sys.getprofile()
    with pytest.raises(ForbiddenRoute):
        guard.call(lambda x: F.conv2d(x, x), (torch.ones(1, 1, 1, 1),))
    assert sys.getprofile() is before
    assert torch._C._len_torch_dispatch_stack() == 0
    assert F.conv2d(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)).item() == 1.0


def test_builtin_and_python_functions_and_backward_are_seen() -> None:
    routes = (Route("torch's sum", python=("torch.sum",)), AUTOGRAD)
    guard = Guard("f", "do it", routes)
    with pytest.raises(ForbiddenRoute, match=r"called torch's sum \(torch.sum\)"):
        guard.call(lambda x: torch.sum(x), (torch.ones(2),))

    def by_autograd(x: torch.Tensor) -> Any:
        leaf = x.clone().requires_grad_(True)
        (leaf * leaf).sum().backward()  # Tensor.sum: a method, not the watched torch.sum
        return leaf.grad

    with pytest.raises(ForbiddenRoute, match=r"autograd's backward pass \(torch.autograd\)"):
        guard.call(by_autograd, (torch.ones(2),))


def test_module_arguments_carry_tripwires() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU())
    guard = Guard("f", "do it", (MODEL_FORWARD,))
    with pytest.raises(ForbiddenRoute, match=r"\(Conv2d.forward\)"):
        guard.call(lambda m: m[0](torch.ones(1, 1, 5, 5)), (model,))
    assert isinstance(model[0], nn.Conv2d) and model[0].kernel_size == (3, 3)  # still readable


def test_routes_name_only_what_exists() -> None:
    with pytest.raises(ValueError, match="aten.no_such_operator"):
        Route("nothing", aten=("no_such_operator",))
    with pytest.raises(ValueError, match="not an importable function"):
        Route("nothing", python=("cnncourse.no_such_module.function",))


def test_a_guard_is_plain_data_for_the_graders_worker() -> None:
    for exercises in CHAPTERS.values():
        for exercise in exercises:
            guard = pickle.loads(pickle.dumps(exercise.guard))
            assert guard == exercise.guard
    with pytest.raises(ForbiddenRoute, match="aten.convolution"):
        pickle.loads(pickle.dumps(CONV_GUARD)).call(F.conv2d, (torch.ones(1, 1, 1, 1),) * 2)


def test_the_grader_reports_the_guards_sentence_as_it_is() -> None:
    """The worker sends a ForbiddenRoute as (type name, message); the grader's sentence is it."""
    assert error_sentence("f", "ForbiddenRoute", SENTENCE, "a case") == SENTENCE
    impostor = error_sentence("f", "ForbiddenRoute", "all cases match.", "a case")
    assert impostor == "f raised ForbiddenRoute (all cases match.) for a case."

"""Chapter 3's graded exercises: ``max_pool2d``, ``max_pool2d_backward``, ``global_avg_pool`` and
``adaptive_avg_pool2d``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch03.check_max_pool2d(max_pool2d)``; it prints one sentence and never raises. The autograder
uses :data:`EXERCISES`. Every reference is computed by PyTorch itself, in float64.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    check,
    compare_tensor,
    draw_int,
)
from cnncourse.checks.guard import AUTOGRAD, AVERAGE_POOLING, MAX_POOLING

__all__ = [
    "ADAPTIVE_AVG_POOL2D",
    "EXERCISES",
    "GLOBAL_AVG_POOL",
    "MAX_POOL2D",
    "MAX_POOL2D_BACKWARD",
    "check_adaptive_avg_pool2d",
    "check_global_avg_pool",
    "check_max_pool2d",
    "check_max_pool2d_backward",
]


# --- Exercises 1 and 2: max_pool2d and its backward pass -----------------------------------------


def _pool_cases(generator: torch.Generator, count: int, with_grad: bool) -> list[Case]:
    """Random float64 inputs (no ties), kernels 1-4 and strides from 1 to kernel + 1.

    Every third case has a stride below its kernel size (overlapping windows), where one input
    can be the maximum of several windows.
    """
    cases: list[Case] = []
    for index in range(count):
        kernel = draw_int(generator, 2, 4) if index % 3 == 0 else draw_int(generator, 1, 4)
        stride = (
            draw_int(generator, 1, kernel - 1)
            if index % 3 == 0
            else draw_int(generator, 1, kernel + 1)
        )
        shape = (
            draw_int(generator, 1, 3),
            draw_int(generator, 1, 3),
            kernel + draw_int(generator, 0, 8),
            kernel + draw_int(generator, 0, 8),
        )
        case: Case = {
            "x": torch.randn(shape, generator=generator, dtype=torch.float64),
            "kernel_size": kernel,
            "stride": stride,
        }
        if with_grad:
            out_h = (shape[2] - kernel) // stride + 1
            out_w = (shape[3] - kernel) // stride + 1
            case["grad_output"] = torch.randn(
                shape[0], shape[1], out_h, out_w, generator=generator, dtype=torch.float64
            )
        cases.append(case)
    return cases


def _pool_describe(case: Case) -> str:
    return (
        f"an input of shape {tuple(case['x'].shape)} with kernel_size={case['kernel_size']}, "
        f"stride={case['stride']}"
    )


def _max_pool_build(case: Case) -> tuple[Any, ...]:
    return (case["x"].clone(), case["kernel_size"], case["stride"])


def _max_pool_reference(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size, stride)


def _max_pool_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("max_pool2d", expected, got, _pool_describe(case))


MAX_POOL2D = Exercise(
    name="max_pool2d",
    points=2,
    grade_id="ex1-max_pool2d",
    make_cases=lambda generator: _pool_cases(generator, 30, with_grad=False),
    build=_max_pool_build,
    reference=_max_pool_reference,
    compare=_max_pool_compare,
    describe=_pool_describe,
    forbidden=(MAX_POOLING,),
    asks="write the pooling yourself",
)


def _backward_build(case: Case) -> tuple[Any, ...]:
    return (case["x"].clone(), case["grad_output"].clone(), case["kernel_size"], case["stride"])


def _backward_reference(
    x: torch.Tensor, grad_output: torch.Tensor, kernel_size: int, stride: int
) -> torch.Tensor:
    """Autograd's gradient of ``sum(max_pool2d(x) * grad_output)`` with respect to ``x``."""
    with torch.enable_grad():  # Exercise.expected switches gradients off
        leaf = x.detach().clone().requires_grad_(True)
        F.max_pool2d(leaf, kernel_size, stride).backward(grad_output)
    assert leaf.grad is not None
    return leaf.grad


def _backward_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("max_pool2d_backward", expected, got, _pool_describe(case))


MAX_POOL2D_BACKWARD = Exercise(
    name="max_pool2d_backward",
    points=3,
    grade_id="ex2-max_pool2d_backward",
    make_cases=lambda generator: _pool_cases(generator, 30, with_grad=True),
    build=_backward_build,
    reference=_backward_reference,
    compare=_backward_compare,
    describe=_pool_describe,
    forbidden=(MAX_POOLING, AUTOGRAD),
    asks="route each window's gradient to its maximum yourself, without autograd",
)


# --- Exercise 3: global_avg_pool -----------------------------------------------------------------


def _gap_cases(generator: torch.Generator) -> list[Case]:
    return [
        {
            "x": torch.randn(
                draw_int(generator, 1, 4),
                draw_int(generator, 1, 6),
                draw_int(generator, 1, 9),
                draw_int(generator, 1, 9),
                generator=generator,
                dtype=torch.float64,
            )
            + 0.5
        }
        for _ in range(20)
    ]


def _gap_describe(case: Case) -> str:
    return f"an input of shape {tuple(case['x'].shape)}"


def _gap_reference(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _gap_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("global_avg_pool", expected, got, _gap_describe(case))


GLOBAL_AVG_POOL = Exercise(
    name="global_avg_pool",
    points=1,
    grade_id="ex3-global_avg_pool",
    make_cases=_gap_cases,
    build=lambda case: (case["x"].clone(),),
    reference=_gap_reference,
    compare=_gap_compare,
    describe=_gap_describe,
    forbidden=(AVERAGE_POOLING,),
    asks="compute each channel's mean yourself",
)


# --- Exercise 4: adaptive_avg_pool2d -----------------------------------------------------------


def _adaptive_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(24):
        h, w = draw_int(generator, 1, 13), draw_int(generator, 1, 13)
        if index % 6 == 0:  # an output as large as the input, or larger: windows of one row
            out_h, out_w = h + draw_int(generator, 0, 2), w + draw_int(generator, 0, 2)
        else:
            out_h, out_w = draw_int(generator, 1, h), draw_int(generator, 1, w)
        cases.append(
            {
                "x": torch.randn(
                    draw_int(generator, 1, 3),
                    draw_int(generator, 1, 4),
                    h,
                    w,
                    generator=generator,
                    dtype=torch.float64,
                ),
                "output_size": (out_h, out_w),
            }
        )
    return cases


def _adaptive_describe(case: Case) -> str:
    return f"an input of shape {tuple(case['x'].shape)} and output_size={case['output_size']}"


def _adaptive_reference(x: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, output_size)


ADAPTIVE_AVG_POOL2D = Exercise(
    name="adaptive_avg_pool2d",
    points=2,
    grade_id="ex4-adaptive_avg_pool2d",
    make_cases=_adaptive_cases,
    build=lambda case: (case["x"].clone(), tuple(case["output_size"])),
    reference=_adaptive_reference,
    compare=lambda expected, got, case: compare_tensor(
        "adaptive_avg_pool2d", expected, got, _adaptive_describe(case)
    ),
    describe=_adaptive_describe,
    forbidden=(AVERAGE_POOLING,),
    asks="find each output's window with section 2's rule and average it yourself",
)

EXERCISES: tuple[Exercise, ...] = (
    MAX_POOL2D,
    MAX_POOL2D_BACKWARD,
    GLOBAL_AVG_POOL,
    ADAPTIVE_AVG_POOL2D,
)
"""Chapter 3's exercises, in notebook order: 2 + 3 + 1 + 2 = 8 points."""


def check_max_pool2d(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``max_pool2d`` on 30 random float64 inputs, kernels and strides."""
    return check(MAX_POOL2D, fn, seed=seed)


def check_max_pool2d_backward(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``max_pool2d_backward`` against autograd on 30 random cases."""
    return check(MAX_POOL2D_BACKWARD, fn, seed=seed)


def check_global_avg_pool(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``global_avg_pool`` on 20 random float64 inputs."""
    return check(GLOBAL_AVG_POOL, fn, seed=seed)


def check_adaptive_avg_pool2d(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``adaptive_avg_pool2d`` against PyTorch's on 24 random float64 inputs and sizes."""
    return check(ADAPTIVE_AVG_POOL2D, fn, seed=seed)

"""Chapter 3's graded exercises: ``max_pool2d``, ``max_pool2d_backward``, ``global_avg_pool`` and
``invariance_error``.

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
    compare_float,
    compare_tensor,
    draw_int,
)
from cnncourse.checks.fixtures import READOUTS, PooledFeatures
from cnncourse.checks.guard import AUTOGRAD, AVERAGE_POOLING, MAX_POOLING

__all__ = [
    "EXERCISES",
    "GLOBAL_AVG_POOL",
    "INVARIANCE_ERROR",
    "MAX_POOL2D",
    "MAX_POOL2D_BACKWARD",
    "PooledFeatures",
    "check_global_avg_pool",
    "check_invariance_error",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "zero_fill_shift",
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


# --- Exercise 4: invariance_error ----------------------------------------------------------------


def zero_fill_shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Move images ``dx`` pixels right and ``dy`` down; uncovered pixels become zero."""
    return F.pad(images, (dx, -dx, dy, -dy))


def _invariance_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for index in range(18):
        channels = draw_int(generator, 1, 3)
        out_channels = draw_int(generator, 2, 6)
        dx, dy = draw_int(generator, -4, 4), draw_int(generator, -4, 4)
        if dx == dy == 0:
            dx = 1
        cases.append(
            {
                "readout": READOUTS[index % 3],
                "weight": torch.randn(
                    out_channels, channels, 3, 3, generator=generator, dtype=torch.float64
                ),
                "bias": torch.rand(out_channels, generator=generator, dtype=torch.float64),
                "images": torch.rand(
                    draw_int(generator, 2, 5),
                    channels,
                    draw_int(generator, 8, 14),
                    draw_int(generator, 8, 14),
                    generator=generator,
                    dtype=torch.float64,
                ),
                "dx": dx,
                "dy": dy,
            }
        )
    return cases


def _invariance_build(case: Case) -> tuple[Any, ...]:
    features = PooledFeatures(case["weight"].clone(), case["bias"].clone(), case["readout"])
    return features, case["images"].clone(), case["dx"], case["dy"]


def _invariance_reference(features: Any, images: torch.Tensor, dx: int, dy: int) -> float:
    base = features(images).flatten(1)
    moved = features(zero_fill_shift(images, dx, dy)).flatten(1)
    return float(((moved - base).norm(dim=1) / base.norm(dim=1)).mean().item())


def _invariance_describe(case: Case) -> str:
    return (
        f"{case['readout']} features of images of shape {tuple(case['images'].shape)} "
        f"with dx={case['dx']}, dy={case['dy']}"
    )


def _invariance_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_float("invariance_error", expected, got, _invariance_describe(case))


INVARIANCE_ERROR = Exercise(
    name="invariance_error",
    points=2,
    grade_id="ex4-invariance_error",
    make_cases=_invariance_cases,
    build=_invariance_build,
    reference=_invariance_reference,
    compare=_invariance_compare,
    describe=_invariance_describe,
)

EXERCISES: tuple[Exercise, ...] = (
    MAX_POOL2D,
    MAX_POOL2D_BACKWARD,
    GLOBAL_AVG_POOL,
    INVARIANCE_ERROR,
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


def check_invariance_error(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``invariance_error`` on 18 random feature extractors, images and shifts."""
    return check(INVARIANCE_ERROR, fn, seed=seed)

"""Chapter 1's graded exercises: ``layer_params``, ``conv_matrix`` and ``equivariance_error``.

In the notebook, the cell after each exercise calls one of the ``check_*`` functions, e.g.
``ch01.check_layer_params(layer_params)``; it prints one sentence and never raises. The
autograder uses :data:`EXERCISES`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnncourse.checks.core import (
    Case,
    CheckResult,
    Exercise,
    check,
    compare_float,
    compare_int,
    compare_tensor,
    draw_int,
)
from cnncourse.checks.fixtures import PositionScale
from cnncourse.checks.guard import CONVOLUTION, PARAMETER_TENSORS

__all__ = [
    "CONV_MATRIX",
    "EQUIVARIANCE_ERROR",
    "EXERCISES",
    "LAYER_PARAMS",
    "PositionScale",
    "check_conv_matrix",
    "check_equivariance_error",
    "check_layer_params",
]


# --- Exercise 1: layer_params ------------------------------------------------------------------


def _layer_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(50):
        bias = bool(draw_int(generator, 0, 1))
        if draw_int(generator, 0, 1):
            cases.append(
                {
                    "kind": "linear",
                    "in_features": draw_int(generator, 1, 300),
                    "out_features": draw_int(generator, 1, 300),
                    "bias": bias,
                }
            )
        else:
            groups = draw_int(generator, 1, 4)
            cases.append(
                {
                    "kind": "conv",
                    "in_channels": groups * draw_int(generator, 1, 8),
                    "out_channels": groups * draw_int(generator, 1, 8),
                    "kernel_size": (draw_int(generator, 1, 7), draw_int(generator, 1, 7)),
                    "groups": groups,
                    "stride": draw_int(generator, 1, 3),
                    "padding": draw_int(generator, 0, 2),
                    "bias": bias,
                }
            )
    return cases


def _layer_build(case: Case) -> tuple[Any, ...]:
    if case["kind"] == "linear":
        return (nn.Linear(case["in_features"], case["out_features"], bias=case["bias"]),)
    return (
        nn.Conv2d(
            case["in_channels"],
            case["out_channels"],
            tuple(case["kernel_size"]),
            stride=case["stride"],
            padding=case["padding"],
            groups=case["groups"],
            bias=case["bias"],
        ),
    )


def _layer_reference(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters())


def _layer_describe(case: Case) -> str:
    if case["kind"] == "linear":
        return f"nn.Linear({case['in_features']}, {case['out_features']}, bias={case['bias']})"
    return (
        f"nn.Conv2d({case['in_channels']}, {case['out_channels']}, "
        f"kernel_size={tuple(case['kernel_size'])}, stride={case['stride']}, "
        f"padding={case['padding']}, groups={case['groups']}, bias={case['bias']})"
    )


def _layer_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_int("layer_params", expected, got, _layer_describe(case))


LAYER_PARAMS = Exercise(
    name="layer_params",
    points=2,
    grade_id="ex1-layer_params",
    make_cases=_layer_cases,
    build=_layer_build,
    reference=_layer_reference,
    compare=_layer_compare,
    describe=_layer_describe,
    forbidden=(PARAMETER_TENSORS,),
    asks="count the parameters from the layer's configuration",
)


# --- Exercise 2: conv_matrix -------------------------------------------------------------------


def _matrix_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    for _ in range(20):
        kh, kw = draw_int(generator, 1, 4), draw_int(generator, 1, 4)
        cases.append(
            {
                "kernel": torch.randn(kh, kw, generator=generator, dtype=torch.float64),
                "height": kh + draw_int(generator, 0, 7),
                "width": kw + draw_int(generator, 0, 7),
            }
        )
    return cases


def _matrix_build(case: Case) -> tuple[Any, ...]:
    return (case["kernel"].clone(), case["height"], case["width"])


def _matrix_reference(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Feed every basis image through ``F.conv2d``: column j of M is conv(e_j), flattened."""
    basis = torch.eye(height * width, dtype=kernel.dtype).reshape(-1, 1, height, width)
    return F.conv2d(basis, kernel[None, None]).flatten(1).T.contiguous()


def _matrix_describe(case: Case) -> str:
    kh, kw = case["kernel"].shape
    return f"a {kh}x{kw} kernel on an image of size {case['height']}x{case['width']}"


def _matrix_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_tensor("conv_matrix", expected, got, _matrix_describe(case))


CONV_MATRIX = Exercise(
    name="conv_matrix",
    points=3,
    grade_id="ex2-conv_matrix",
    make_cases=_matrix_cases,
    build=_matrix_build,
    reference=_matrix_reference,
    compare=_matrix_compare,
    describe=_matrix_describe,
    forbidden=(CONVOLUTION,),
    asks="build the matrix from the kernel's values, without running a convolution",
)


# --- Exercise 3: equivariance_error ------------------------------------------------------------


def _equivariance_cases(generator: torch.Generator) -> list[Case]:
    cases: list[Case] = []
    kinds = ("circularly padded convolution", "zero-padded convolution", "position scale")
    for index in range(21):
        kind = kinds[index % 3]
        n, c = draw_int(generator, 1, 3), draw_int(generator, 1, 3)
        h, w = draw_int(generator, 6, 12), draw_int(generator, 6, 12)
        case: Case = {
            "kind": kind,
            "images": torch.randn(n, c, h, w, generator=generator, dtype=torch.float64),
            "dx": draw_int(generator, -5, 5),
            "dy": draw_int(generator, -5, 5),
        }
        if kind == "position scale":
            case["scale"] = torch.rand(h, w, generator=generator, dtype=torch.float64) + 0.5
        else:
            k = 2 * draw_int(generator, 0, 2) + 1
            case["weight"] = torch.randn(
                draw_int(generator, 1, 4), c, k, k, generator=generator, dtype=torch.float64
            )
            case["bias"] = torch.randn(case["weight"].shape[0], generator=generator).double()
        cases.append(case)
    return cases


def _equivariance_build(case: Case) -> tuple[Any, ...]:
    layer: nn.Module
    if case["kind"] == "position scale":
        layer = PositionScale(case["scale"].clone())
    else:
        out_c, in_c, k, _ = case["weight"].shape
        layer = nn.Conv2d(
            in_c,
            out_c,
            k,
            padding=k // 2,
            padding_mode="circular" if case["kind"].startswith("circular") else "zeros",
            dtype=torch.float64,
        )
        with torch.no_grad():
            layer.weight.copy_(case["weight"])
            layer.bias.copy_(case["bias"])  # type: ignore[union-attr]
    return layer, case["images"].clone(), case["dx"], case["dy"]


def _equivariance_reference(layer: Any, images: torch.Tensor, dx: int, dy: int) -> float:
    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.roll(t, shifts=(dy, dx), dims=(-2, -1))

    shifted_out = shift(layer(images))
    return float(((layer(shift(images)) - shifted_out).norm() / shifted_out.norm()).item())


def _equivariance_describe(case: Case) -> str:
    return (
        f"a {case['kind']} layer on images of shape {tuple(case['images'].shape)} "
        f"with dx={case['dx']}, dy={case['dy']}"
    )


def _equivariance_compare(expected: Any, got: Any, case: Case) -> str | None:
    return compare_float("equivariance_error", expected, got, _equivariance_describe(case))


EQUIVARIANCE_ERROR = Exercise(
    name="equivariance_error",
    points=2,
    grade_id="ex3-equivariance_error",
    make_cases=_equivariance_cases,
    build=_equivariance_build,
    reference=_equivariance_reference,
    compare=_equivariance_compare,
    describe=_equivariance_describe,
)

EXERCISES: tuple[Exercise, ...] = (LAYER_PARAMS, CONV_MATRIX, EQUIVARIANCE_ERROR)
"""Chapter 1's exercises, in notebook order: 2 + 3 + 2 = 7 points."""


def check_layer_params(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``layer_params`` on 50 random ``nn.Linear`` and ``nn.Conv2d`` layers."""
    return check(LAYER_PARAMS, fn, seed=seed)


def check_conv_matrix(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``conv_matrix`` on 20 random float64 kernels and image sizes."""
    return check(CONV_MATRIX, fn, seed=seed)


def check_equivariance_error(fn: Any, *, seed: int | None = None) -> CheckResult:
    """Check ``equivariance_error`` on 21 random layers, float64 images and shifts."""
    return check(EQUIVARIANCE_ERROR, fn, seed=seed)
